import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Warehouse } from '../stores/index.js';
import { HITS_TABLE, INGEST_TABLE, ROLLUPS, ROLLUPS_TABLE, SESSIONS_TABLE } from './warehouse-tables.js';

/**
 * After a crash: checks that every table holds what the adopted (and just re-shipped) segments
 * put in it, and puts back what a crash lost. On a non-replicated MergeTree table ClickHouse
 * records an insert's deduplication token a moment before the insert's part becomes visible; a
 * process killed in that moment leaves the token without the part, and re-shipping the segment
 * is then dropped as a duplicate by that table alone. So only a whole block of one segment can be
 * missing from a table (one per partition: a block spanning months is several parts). This runs
 * only when a process adopts the journal of one that exited, after all its segments were shipped
 * again, so every other table already holds them:
 *
 * - Hits: a hit is identified by (website_id, session_id, session_hit_number); those absent are
 *   inserted.
 * - Sessions: collapsing merges remove a row with its cancel row, so rows can't be looked up one by
 *   one. What is checked is the sum of signs per (session_id, version), which merges keep: hit n
 *   of a session writes +1 at version n and -1 at version n-1, so with the hits as the reference
 *   it must be (hit n stored) - (hit n+1 stored).
 * - Rollups: per key, the view's own query over the raw rows minus what the rollup holds must be
 *   zero; where it is exactly a segment's contribution (the view's query over that segment's rows)
 *   that block was lost.
 *
 * For sessions and rollups a block (a segment's rows of one partition) is repaired only when the
 * difference on every key it touches is exactly its own contribution, in two checks settleMs
 * apart, so rows shipped meanwhile by live processes (whose raw part may be visible before their
 * rollup part) are not taken for a loss; a block whose difference is something else (another
 * insert settling, another journal's loss) is checked again a few times, then left with a warning.
 * Blocks are repaired one at a time, checking again after each: one block's loss shows on the
 * keys it shares with its neighbours, which are explained once it is put back.
 *
 * Rows go into the raw tables through a staging table and ATTACH PARTITION ... FROM, which doesn't
 * run the views (that would double the rollups that were not lost), and into the rollups by a
 * plain insert without a token. Everything here is found again from the tables, so a process
 * killed while repairing leaves the segments to the next adopter, which checks again. Tables on
 * Replicated engines are skipped: there the token and the part are committed together.
 */

export interface RecoveredSegment {
  /** The segment's rows as shipped: JSONEachRow lines of the ingest table, each starting `{"kind":`. */
  payloads: readonly Buffer[];
}

export interface RepairOptions {
  logger: Logger;
  /** Before checking an unexplained block again (rows of other inserts settling). */
  settleMs?: number;
  /** How many times an unexplained block is checked again before it is left. */
  attempts?: number;
}

/** Rows put back per table (absent: nothing was missing). */
export type RepairCounts = Partial<Record<string, number>>;

const INSERT_SETTINGS = {
  // A repair is an ordinary insert: no token (the next adopter checks again), no async buffer.
  insert_deduplicate: 0,
  async_insert: 0,
  date_time_input_format: 'best_effort',
  input_format_skip_unknown_fields: 0,
} as const;

/** The rollups' raw source and its time column (the one the view buckets by). */
const SOURCE_TIME: Record<string, string> = { [HITS_TABLE]: 'time', [SESSIONS_TABLE]: 'start_time' };
const KIND: Record<string, number> = { [HITS_TABLE]: 0, [SESSIONS_TABLE]: 1 };

const STAGE_PREFIX = 'analytics_repair_';

interface BlockCheck {
  seg: number;
  part: number;
  /** Keys whose difference is not zero: the block isn't (only) present. */
  off: number;
  /** Keys whose difference is not this block's own contribution: it isn't (only) lost. */
  unlike: number;
  keys: number;
}

export async function repairRecoveredSegments(warehouse: Warehouse, segments: readonly RecoveredSegment[], options: RepairOptions): Promise<RepairCounts> {
  const repair = new Repair(warehouse, options);
  return repair.run(segments);
}

class Repair {
  readonly #w: Warehouse;
  readonly #o: Required<RepairOptions>;
  readonly #id = randomBytes(6).toString('hex');
  readonly #stage: string;
  readonly #counts: RepairCounts = {};
  readonly #unexplained: Record<string, number> = {};

  constructor(warehouse: Warehouse, options: RepairOptions) {
    this.#w = warehouse;
    this.#o = { settleMs: 1000, attempts: 5, ...options };
    this.#stage = `${STAGE_PREFIX}${this.#id}`;
  }

  async run(segments: readonly RecoveredSegment[]): Promise<RepairCounts> {
    await this.#dropAbandonedStages();
    const tables = await this.#tables();
    // Replicated (and ClickHouse Cloud's Shared) tables commit a token with its part in Keeper.
    const checked = [HITS_TABLE, SESSIONS_TABLE, ...ROLLUPS].filter((t) => tables.get(t) && !/^(Replicated|Shared)/.test(tables.get(t)!.engine));
    if (!checked.length || !segments.some((s) => s.payloads.length)) return {};
    // The segments' rows, each with its segment's number.
    await this.#command(`CREATE TABLE ${this.#stage} ENGINE = Memory AS SELECT toUInt32(0) AS seg, * FROM ${INGEST_TABLE} WHERE 0`);
    try {
      const rows = segments.flatMap((s, i) => s.payloads.map((p) => withSegment(p, i)));
      await this.#w.insertRaw(this.#stage, 'JSONEachRow', rows, INSERT_SETTINGS);
      // Raw tables first: they are the reference the others are checked against.
      if (checked.includes(HITS_TABLE)) await this.#repairHits();
      if (checked.includes(SESSIONS_TABLE)) await this.#repairSessions();
      for (const rollup of ROLLUPS) if (checked.includes(rollup)) await this.#repairRollup(rollup, tables.get(rollup)!.sortingKey);
    } finally {
      await this.#command(`DROP TABLE IF EXISTS ${this.#stage}`).catch(() => {});
    }
    if (Object.keys(this.#unexplained).length) {
      this.#o.logger.warn({ blocks: this.#unexplained }, 'analytics journal: after a crash, some tables differ from re-shipped segments in a way no lost block explains; left as they are');
    }
    return this.#counts;
  }

  /** Hits absent from the hits table, by their identity. */
  async #repairHits(): Promise<void> {
    const ours = `${this.#stage} WHERE kind = 0`;
    const stored = `SELECT website_id, session_id, session_hit_number FROM ${HITS_TABLE}
      WHERE website_id IN (SELECT website_id FROM ${ours})
        AND time >= (SELECT min(time) FROM ${ours}) AND time <= (SELECT max(time) FROM ${ours})`;
    const cols = await this.#columns(HITS_TABLE);
    const rows = await this.#putBack(HITS_TABLE, `SELECT ${cols} FROM ${ours} AND (website_id, session_id, session_hit_number) NOT IN (${stored})
      LIMIT 1 BY website_id, session_id, session_hit_number`);
    if (rows) this.#counts[HITS_TABLE] = rows;
  }

  async #repairSessions(): Promise<void> {
    const ours = `${this.#stage} WHERE kind = 1`;
    // A session's hits lie within a day of its rows (hits are dated at most 4 hours back, and a
    // session's next hit comes within 30 minutes of its last).
    const hits = `SELECT session_id, session_hit_number AS n FROM ${HITS_TABLE}
      WHERE website_id IN (SELECT website_id FROM ${ours}) AND session_id IN (SELECT session_id FROM ${ours})
        AND time >= (SELECT min(start_time) FROM ${ours}) - INTERVAL 1 DAY AND time <= (SELECT max(end_time) FROM ${ours}) + INTERVAL 1 DAY`;
    const expected = `SELECT session_id, version, sum(x) AS e FROM (
        SELECT session_id, n AS version, toInt64(1) AS x FROM (${hits})
        UNION ALL SELECT session_id, toUInt32(n - 1) AS version, toInt64(-1) AS x FROM (${hits}) WHERE n > 1
      ) GROUP BY session_id, version`;
    // A session's start only moves back, by at most the hours a hit may be dated back.
    const observed = `SELECT session_id, version, sum(sign) AS o FROM ${SESSIONS_TABLE}
      WHERE website_id IN (SELECT website_id FROM ${ours}) AND session_id IN (SELECT session_id FROM ${ours})
        AND start_time >= (SELECT min(start_time) FROM ${ours}) - INTERVAL 1 DAY AND start_time <= (SELECT max(start_time) FROM ${ours}) + INTERVAL 1 DAY
      GROUP BY session_id, version`;
    const block = `SELECT seg, toYYYYMM(start_time) AS part, session_id, version, sum(sign) AS c FROM ${ours} GROUP BY seg, part, session_id, version`;
    const check = `SELECT seg, part, countIf(d != 0) AS off, countIf(d != c) AS unlike, count() AS keys FROM (
        SELECT b.seg AS seg, b.part AS part, b.c AS c, toInt64(e.e) - toInt64(o.o) AS d FROM (${block}) AS b
        LEFT JOIN (${expected}) AS e ON b.session_id = e.session_id AND b.version = e.version
        LEFT JOIN (${observed}) AS o ON b.session_id = o.session_id AND b.version = o.version
      ) GROUP BY seg, part`;
    const cols = await this.#columns(SESSIONS_TABLE);
    await this.#settle(SESSIONS_TABLE, check, (b) =>
      this.#putBack(SESSIONS_TABLE, `SELECT ${cols} FROM ${ours} AND seg = ${b.seg} AND toYYYYMM(start_time) = ${b.part}`),
    );
  }

  async #repairRollup(rollup: string, sortingKey: string): Promise<void> {
    const view = await this.#viewOf(rollup);
    if (!view) return;
    const keys = sortingKey.split(',').map((k) => k.trim());
    const columns = await this.#columnTypes(rollup);
    const sums = columns.filter((c) => !keys.includes(c.name));
    const contrib = `${this.#stage}_c`;
    const from = await this.#completeFrom(rollup);
    const sourceColumns = await this.#columns(view.source);
    const ours = (seg: number) => `SELECT ${sourceColumns} FROM ${this.#stage} WHERE kind = ${KIND[view.source]} AND seg = ${seg}`;
    const segments = await this.#rows<{ seg: string }>(`SELECT DISTINCT seg FROM ${this.#stage} WHERE kind = ${KIND[view.source]} ORDER BY seg`);
    if (!segments.length) return;
    // Each segment's contribution: the view's own query over that segment's rows.
    await this.#command(`CREATE TABLE ${contrib} ENGINE = Memory AS SELECT toUInt32(0) AS seg, * FROM (${view.over(ours(0))}) WHERE 0`);
    try {
      for (const { seg } of segments) {
        await this.#command(`INSERT INTO ${contrib} SELECT toUInt32(${seg}) AS seg, * FROM (${view.over(ours(Number(seg)))}) WHERE bucket >= fromUnixTimestamp64Milli(toInt64(${from}))`);
      }
      const time = SOURCE_TIME[view.source]!;
      const range = `website_id IN (SELECT website_id FROM ${contrib})`;
      const raw = view.over(`SELECT * FROM ${view.source} WHERE ${range}
        AND ${time} >= (SELECT min(bucket) FROM ${contrib}) AND ${time} < (SELECT max(bucket) FROM ${contrib}) + INTERVAL 15 MINUTE`);
      const held = `SELECT ${keys.join(', ')}, ${sums.map((s) => `sum(${s.name}) AS ${s.name}`).join(', ')} FROM ${rollup}
        WHERE ${range} AND bucket >= (SELECT min(bucket) FROM ${contrib}) AND bucket <= (SELECT max(bucket) FROM ${contrib})
        GROUP BY ${keys.join(', ')}`;
      // Raw minus held, per key of a contribution (a key nothing differs on has zeros).
      const diff = `SELECT ${keys.join(', ')}, ${sums.map((s) => `toFloat64(r.${s.name}) - toFloat64(h.${s.name}) AS d_${s.name}`).join(', ')}
        FROM (${raw}) AS r FULL OUTER JOIN (${held}) AS h USING (${keys.join(', ')})`;
      const same = (a: string, b: string) => `abs(${a} - ${b}) <= 1e-9 * greatest(1, abs(${a}), abs(${b}))`;
      const zero = sums.map((s) => same(`d.d_${s.name}`, '0')).join(' AND ');
      const own = sums.map((s) => same(`d.d_${s.name}`, `toFloat64(c.${s.name})`)).join(' AND ');
      const contributes = sums.map((s) => `c.${s.name} != 0`).join(' OR ');
      const check = `SELECT c.seg AS seg, toYYYYMM(c.bucket) AS part, countIf(NOT (${zero})) AS off, countIf(NOT (${own})) AS unlike, count() AS keys
        FROM ${contrib} AS c LEFT JOIN (${diff}) AS d USING (${keys.join(', ')})
        WHERE ${contributes} GROUP BY seg, part`;
      const names = columns.map((c) => c.name).join(', ');
      await this.#settle(rollup, check, async (b) => {
        const [n] = await this.#rows<{ n: string }>(`SELECT count() AS n FROM ${contrib} WHERE seg = ${b.seg} AND toYYYYMM(bucket) = ${b.part}`);
        await this.#command(`INSERT INTO ${rollup} (${names}) SELECT ${names} FROM ${contrib} WHERE seg = ${b.seg} AND toYYYYMM(bucket) = ${b.part}`, INSERT_SETTINGS);
        return Number(n?.n ?? 0);
      });
    } finally {
      await this.#command(`DROP TABLE IF EXISTS ${contrib}`).catch(() => {});
    }
  }

  /**
   * Repairs, one at a time, the blocks whose difference is exactly their own (then checks again:
   * a repair may explain a neighbour's difference); blocks that stay unexplained are checked
   * again after settleMs, a few times.
   */
  async #settle(table: string, check: string, repair: (block: BlockCheck) => Promise<number>): Promise<void> {
    const repaired = new Set<string>();
    const suspected = new Set<string>();
    for (let attempt = 0; ; ) {
      const blocks = (await this.#rows<Record<keyof BlockCheck, string>>(check)).map((b) => ({
        seg: Number(b.seg),
        part: Number(b.part),
        off: Number(b.off),
        unlike: Number(b.unlike),
        keys: Number(b.keys),
      }));
      const lost = blocks.filter((b) => b.off > 0 && b.unlike === 0 && !repaired.has(`${b.seg}/${b.part}`)).sort((a, b) => b.keys - a.keys);
      if (lost.length) {
        const block = lost[0]!;
        const id = `${block.seg}/${block.part}`;
        // Seen lost twice, settleMs apart: not rows of an insert still running elsewhere.
        if (!suspected.has(id)) {
          suspected.add(id);
          await new Promise((r) => setTimeout(r, this.#o.settleMs));
          continue;
        }
        repaired.add(id);
        const rows = await repair(block);
        this.#counts[table] = (this.#counts[table] ?? 0) + rows;
        continue;
      }
      const unexplained = blocks.filter((b) => b.off > 0);
      if (!unexplained.length) return;
      if (++attempt > this.#o.attempts) {
        this.#unexplained[table] = unexplained.length;
        return;
      }
      await new Promise((r) => setTimeout(r, this.#o.settleMs));
    }
  }

  /** Inserts rows into a raw table without running its views: staged, then attached partition by partition. */
  async #putBack(table: string, select: string): Promise<number> {
    const staged = `${this.#stage}_${table === HITS_TABLE ? 'h' : 's'}`;
    await this.#command(`CREATE TABLE ${staged} AS ${table}`);
    try {
      await this.#command(`INSERT INTO ${staged} ${select}`, INSERT_SETTINGS);
      const [n] = await this.#rows<{ n: string }>(`SELECT count() AS n FROM ${staged}`);
      const rows = Number(n?.n ?? 0);
      if (rows) {
        for (const { p } of await this.#rows<{ p: string }>(`SELECT DISTINCT _partition_id AS p FROM ${staged}`)) {
          await this.#command(`ALTER TABLE ${table} ATTACH PARTITION ID '${p.replace(/'/g, '')}' FROM ${staged}`);
        }
      }
      return rows;
    } finally {
      await this.#command(`DROP TABLE IF EXISTS ${staged}`).catch(() => {});
    }
  }

  async #tables(): Promise<Map<string, { engine: string; sortingKey: string }>> {
    const found = await this.#rows<{ name: string; engine: string; sorting_key: string }>(
      'SELECT name, engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}',
      { names: [HITS_TABLE, SESSIONS_TABLE, ...ROLLUPS] },
    );
    return new Map(found.map((t) => [t.name, { engine: t.engine, sortingKey: t.sorting_key }]));
  }

  /** The rollup view's query, to run over other rows than its source's. */
  async #viewOf(rollup: string): Promise<{ source: string; over: (rows: string) => string } | undefined> {
    const [view] = await this.#rows<{ as_select: string }>('SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = {v:String}', { v: `${rollup}_mv` });
    const query = view?.as_select ?? '';
    for (const source of [HITS_TABLE, SESSIONS_TABLE]) {
      const re = new RegExp(`\\bFROM\\s+(?:\`?${this.#w.database}\`?\\.)?\`?${source}\`?(?=\\s|$)`);
      if (re.test(query)) return { source, over: (rows) => query.replace(re, () => `FROM (${rows})`) };
    }
    this.#o.logger.warn({ rollup }, 'analytics journal: could not read the rollup view\'s query; not checked after the crash');
    return undefined;
  }

  async #completeFrom(rollup: string): Promise<number> {
    const [r] = await this.#rows<{ from: string | null }>(`SELECT toUnixTimestamp64Milli(max(complete_from)) AS from FROM ${ROLLUPS_TABLE} WHERE name = {n:String}`, { n: rollup });
    return Number(r?.from ?? 0);
  }

  async #columnTypes(table: string): Promise<Array<{ name: string; type: string }>> {
    return this.#rows('SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position', { t: table });
  }

  async #columns(table: string): Promise<string> {
    return (await this.#columnTypes(table)).map((c) => c.name).join(', ');
  }

  /** Staging tables of a repair that was killed (a day old: a repair running elsewhere is left alone). */
  async #dropAbandonedStages(): Promise<void> {
    const old = await this.#rows<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '${STAGE_PREFIX}') AND metadata_modification_time < now() - INTERVAL 1 DAY`,
    );
    for (const { name } of old) await this.#command(`DROP TABLE IF EXISTS ${name}`).catch(() => {});
  }

  async #rows<T>(query: string, query_params?: Record<string, unknown>): Promise<T[]> {
    return (await this.#w.client.query({ query, query_params, format: 'JSONEachRow' })).json<T>();
  }

  async #command(query: string, settings?: Record<string, string | number>): Promise<void> {
    await this.#w.client.command({ query, clickhouse_settings: settings as never });
  }
}

/** A payload's lines with their segment's number as the first field. */
function withSegment(payload: Buffer, seg: number): Buffer {
  return Buffer.from(`\n${payload.toString('utf8')}`.replaceAll('\n{', `\n{"seg":${seg},`).slice(1));
}
