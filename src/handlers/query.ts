import type { components } from '../../generated/types.js';
import type { Handler } from '../../generated/handlers.js';
import type { AccessControl } from '../authz/index.js';
import { requirePrincipal } from '../datasets/principal.js';
import type { DatasetRecord } from '../datasets/repository.js';
import { deletedProblem, type DatasetService } from '../datasets/service.js';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError } from '../problem.js';
import type { Warehouse } from '../stores/index.js';
import { accessViewFor, queryableColumn } from '../query/access-view.js';
import type { QueryCache } from '../query/cache.js';
import { fetchChanges } from '../query/changes.js';
import { compileQuery } from '../query/compile.js';
import { runQuery, type QueryLimits } from '../query/execute.js';
import type { AccessView, QueryableDataset, QueryRequest } from '../query/types.js';

export interface QueryDeps {
  datasets: DatasetService;
  access: AccessControl;
  warehouse: Warehouse;
  cache: QueryCache;
  limits: QueryLimits & { maxRows: number };
  /** How long after its ingest a row is settled enough for the change feed. */
  changesSettleMs?: number;
}

type QueryOps = 'queryDataset' | 'getDatasetChanges';

const RESULT_FIELDS = ['rows', 'columns', 'total_rows', 'next_cursor', 'query_time_ms', 'sampled'] as const;

/** The dataset (409 once deleted) and what this caller may see of it. */
export async function datasetForCaller(deps: Pick<QueryDeps, 'datasets' | 'access' | 'warehouse'>, principal: Principal, datasetId: string) {
  const record = await deps.datasets.get(principal.tenant, datasetId);
  if (record.deleted_at) throw deletedProblem(record);
  const view = await accessViewFor(deps.access, principal, record);
  return { record, view, queryable: queryableDataset(deps.warehouse, record) };
}

export function queryableDataset(warehouse: Warehouse, record: DatasetRecord): QueryableDataset {
  return {
    table: `\`${warehouse.database}\`.\`${record.id}\``,
    timeColumn: record.time_column ?? undefined,
    sortKey: record.sort_key,
    columns: record.columns.map(queryableColumn),
  };
}

/**
 * The warehouse's limit errors as answers the client can act on; their messages quote SQL, so
 * only the kind is told.
 */
export function warehouseProblem(err: unknown): unknown {
  const type = (err as { type?: string })?.type;
  if (type === 'TIMEOUT_EXCEEDED' || type === 'TOO_SLOW') {
    return new ProblemError(503, {
      type: 'query-timeout',
      title: 'Query took too long',
      detail: 'The query ran longer than a query may; narrow it with filters or a date range, or retry when the warehouse is less busy.',
      headers: { 'Retry-After': '5' },
    });
  }
  if (type === 'MEMORY_LIMIT_EXCEEDED') {
    return new ProblemError(400, { type: 'query-too-large', title: 'Query needs too much memory', detail: 'The query needed more memory than a query may use; narrow it with filters, fewer dimensions or fewer columns.' });
  }
  if (type === 'TOO_MANY_ROWS' || type === 'TOO_MANY_ROWS_OR_BYTES') {
    return new ProblemError(400, { type: 'query-too-large', title: 'Query result too large', detail: 'The result has more rows than a page may hold; lower the limit.' });
  }
  return err;
}

type QueryResult = components['schemas']['QueryResult'];

/** The page with only the top-level fields asked for (`rows` and `next_cursor` always). */
function projectFields(page: QueryResult, fields: unknown): QueryResult {
  const wanted = Array.isArray(fields) ? fields : typeof fields === 'string' && fields ? fields.split(',') : undefined;
  if (!wanted) return page;
  const keep = new Set<string>(['rows', 'next_cursor', ...wanted.map(String)]);
  return Object.fromEntries(RESULT_FIELDS.filter((f) => keep.has(f) && f in page).map((f) => [f, page[f as keyof QueryResult]])) as QueryResult;
}

function wantsTotal(fields: unknown): boolean {
  const wanted = Array.isArray(fields) ? fields.map(String) : typeof fields === 'string' && fields ? fields.split(',') : undefined;
  return !wanted || wanted.includes('total_rows');
}

export function queryHandlers(deps: QueryDeps): { [K in QueryOps]: Handler<K> } {
  return {
    queryDataset: async ({ req, params, query, body, signal }) => {
      const principal = requirePrincipal(req);
      const { record, view, queryable } = await datasetForCaller(deps, principal, params.datasetId);
      const compiled = compileQuery(body as QueryRequest, queryable, view, { maxLimit: deps.limits.maxRows });
      const withTotal = wantsTotal(query.fields);
      try {
        const page = await deps.cache.getOrRun(record.id, record.version, compiled, withTotal, () => runQuery(deps.warehouse, compiled, deps.limits, { signal, withTotal }));
        const { cached: _cached, ...result } = page;
        return { status: 200, body: projectFields(result, query.fields) };
      } catch (err) {
        throw warehouseProblem(err);
      }
    },
    getDatasetChanges: async ({ req, params, query, signal }) => {
      const principal = requirePrincipal(req);
      const { view, queryable } = await datasetForCaller(deps, principal, params.datasetId);
      const limit = Math.min(1000, Math.max(1, Number(query.limit ?? 50) || 50));
      try {
        const page = await fetchChanges(deps.warehouse, queryable, view as AccessView, {
          since: typeof query.since === 'string' && query.since ? query.since : undefined,
          limit,
          settleMs: deps.changesSettleMs ?? 2000,
          limits: deps.limits,
          signal,
        });
        return { status: 200, body: page };
      } catch (err) {
        throw warehouseProblem(err);
      }
    },
  };
}
