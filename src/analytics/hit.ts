import type { CampaignParams } from './traffic-source.js';

/** One Measurement Protocol v1 hit, checked, with the parameters Weir models (the rest are dropped here). */
export interface MpHit extends CampaignParams {
  tid: string;
  cid?: string;
  uid?: string;
  t: HitType;
  dh?: string;
  dp?: string;
  dl?: string;
  dt?: string;
  dr?: string;
  ec?: string;
  ea?: string;
  el?: string;
  ev?: number;
  uip?: string;
  ua?: string;
  sr?: string;
  ul?: string;
  qt?: number;
  timestamp?: number;
  /** Non-interaction hit (`ni=1`): does not end a bounce. */
  ni: boolean;
}

export const HIT_TYPES = ['pageview', 'screenview', 'event', 'transaction', 'item', 'social', 'exception', 'timing'] as const;
export type HitType = (typeof HIT_TYPES)[number];

/** Measurement Protocol v1's limit for one hit, in bytes. */
export const MAX_HIT_BYTES = 8192;
export const MAX_BATCH_HITS = 20;
export const MAX_BATCH_BYTES = 16384;

export const TRACKING_ID_RE = /^(UA-[0-9]{1,10}-[0-9]{1,4}|WA-[0-9A-Z]{6,12})$/;

// Maximum lengths from the CollectHit schema, so every encoding is held to the same limits.
const MAX_LENGTH: ReadonlyArray<readonly [string, number]> = Object.entries({
  cid: 150, uid: 256, dh: 100, dp: 2048, dl: 2048, dt: 1500, dr: 2048, ec: 150, ea: 500, el: 500, uip: 45, ua: 1024,
  cn: 100, cs: 100, cm: 50, ck: 500, cc: 500, gclid: 200, sr: 20, ul: 20,
});
const NUMBERS = [['ev', 2147483647], ['qt', 14400000], ['timestamp', Number.MAX_SAFE_INTEGER]] as const;

export type HitParseResult = { ok: true; hit: MpHit } | { ok: false; detail: string };

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

function digits(v: unknown, name: string, max: number): number | undefined | string {
  if (v === undefined || v === '') return undefined;
  const s = text(v);
  if (s === undefined || !/^[0-9]{1,15}$/.test(s)) return `${name} must be a non-negative integer`;
  const n = Number(s);
  return n > max ? `${name} must be at most ${max}` : n;
}

const fail = (detail: string): HitParseResult => ({ ok: false, detail });

/**
 * Checks and normalises a hit given as parameters (a parsed JSON body, a form body, a query
 * string or one line of a text batch). Unknown parameters are ignored, as GA clients send many.
 */
export function parseHit(params: Record<string, unknown>): HitParseResult {
  if (text(params.v) !== '1') return fail(params.v === undefined ? 'missing required parameter v' : 'v must be 1');
  const tid = text(params.tid);
  if (!tid) return fail('missing required parameter tid');
  if (!TRACKING_ID_RE.test(tid)) return fail(`tid ${JSON.stringify(tid.slice(0, 40))} is not a tracking id`);
  const t = text(params.t);
  if (!t) return fail('missing required parameter t');
  if (!(HIT_TYPES as readonly string[]).includes(t)) return fail(`t ${JSON.stringify(t.slice(0, 40))} is not a hit type`);
  const out: Record<string, unknown> = { tid, t, ni: text(params.ni) === '1' };
  for (const [name, max] of MAX_LENGTH) {
    const value = params[name];
    if (value === undefined) continue;
    const s = text(value);
    if (s === undefined) return fail(`${name} must be a string`);
    if (s.length > max) return fail(`${name} is longer than ${max} characters`);
    if (s !== '') out[name] = s;
  }
  if (!out.cid && !out.uid) return fail('missing required parameter cid (or uid)');
  if (t === 'event' && (!out.ec || !out.ea)) return fail('an event hit needs ec and ea');
  if (out.sr !== undefined && !/^[0-9]{1,5}x[0-9]{1,5}$/.test(out.sr as string)) return fail('sr must be <width>x<height>');
  for (const [name, max] of NUMBERS) {
    const n = digits(params[name], name, max);
    if (typeof n === 'string') return fail(n);
    if (n !== undefined) out[name] = n;
  }
  return { ok: true, hit: out as unknown as MpHit };
}

/** A form-encoded payload (`v=1&tid=...`) as parameters; the first value of a repeated name wins. */
export function parseFormPayload(payload: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(payload.trim())) if (!(k in params)) params[k] = v;
  return params;
}

/** A JSON `/batch` event under its readable names, as Measurement Protocol parameters. */
export function batchEventParams(event: Record<string, unknown>, batch: { tracking_id: string; client_id?: string }): Record<string, unknown> {
  return {
    v: '1',
    tid: batch.tracking_id,
    t: event.type,
    cid: event.client_id ?? batch.client_id,
    uid: event.user_id,
    dp: event.page,
    dl: event.location,
    dt: event.title,
    dr: event.referrer,
    dh: event.hostname,
    ec: event.category,
    ea: event.action,
    el: event.label,
    ev: event.value,
    cn: event.campaign_name,
    cs: event.campaign_source,
    cm: event.campaign_medium,
    ck: event.campaign_keyword,
    cc: event.campaign_content,
    sr: event.screen_resolution,
    ul: event.language,
    timestamp: event.timestamp,
  };
}
