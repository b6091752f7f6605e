import type { Handler } from '../../generated/handlers.js';
import { requirePrincipal } from '../datasets/principal.js';
import { presentDataset, presentVersion } from '../datasets/present.js';
import type { DatasetInput, DatasetService } from '../datasets/service.js';

export interface DatasetsDeps {
  datasets: DatasetService;
}

const flag = (v: unknown) => v === true || v === 'true';
const limitOf = (v: unknown) => Math.min(1000, Math.max(1, Number(v ?? 50) || 50));
const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

type DatasetOps = 'createDataset' | 'listDatasets' | 'getDataset' | 'updateDataset' | 'deleteDataset' | 'listDatasetVersions';

export function datasetsHandlers({ datasets }: DatasetsDeps): { [K in DatasetOps]: Handler<K> } {
  return {
    createDataset: async ({ req, body }) => {
      const record = await datasets.create(requirePrincipal(req), body as DatasetInput);
      return { status: 201, headers: { Location: `/v1/datasets/${record.id}` }, body: presentDataset(record) };
    },
    listDatasets: async ({ req, query }) => {
      const page = await datasets.list(requirePrincipal(req).tenant, {
        cursor: text(query.cursor),
        limit: limitOf(query.limit),
        q: text(query.q),
        includeDeleted: flag(query.include_deleted),
      });
      return { status: 200, body: { items: page.items.map(presentDataset), next_cursor: page.next_cursor } };
    },
    getDataset: async ({ req, params }) => ({
      status: 200,
      body: presentDataset(await datasets.get(requirePrincipal(req).tenant, params.datasetId)),
    }),
    updateDataset: async ({ req, params, body }) => {
      const result = await datasets.update(requirePrincipal(req), params.datasetId, body as DatasetInput & { new_major_version?: boolean });
      return {
        status: 200,
        body: { dataset: presentDataset(result.dataset), version: presentVersion(result.version), version_created: result.created },
      };
    },
    deleteDataset: async ({ req, params, query }) => {
      const purge = flag(query.purge);
      const record = await datasets.remove(requirePrincipal(req), params.datasetId, purge);
      return purge ? { status: 202, body: presentDataset(record) } : { status: 200, body: presentDataset(record) };
    },
    listDatasetVersions: async ({ req, params, query }) => {
      const page = await datasets.versions(requirePrincipal(req).tenant, params.datasetId, { cursor: text(query.cursor), limit: limitOf(query.limit) });
      return { status: 200, body: { items: page.items.map(presentVersion), next_cursor: page.next_cursor } };
    },
  };
}
