import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runReport } from '../../src/analytics/reports.js';
import { ProblemError } from '../../src/problem.js';
import type { Warehouse } from '../../src/stores/index.js';

// A forged cursor can carry the right fingerprint (it is a hash of the public request body), so
// its offset must be checked before it reaches the compiler: anything but a whole number >= 0 is a 400.
const spec = { date_range: { start: '2026-01-01', end: '2026-01-31' }, metrics: ['pageviews'] } as const;
const fingerprint = createHash('sha256').update(JSON.stringify(spec)).digest('base64url').slice(0, 16);
const cursor = (o: unknown) => Buffer.from(JSON.stringify({ o, f: fingerprint })).toString('base64url');
const unusedWarehouse = {} as Warehouse;

describe('report cursors', () => {
  it.each([['-1', -1], ['a string', 'x'], ['a fraction', 1.5], ['too large', 2 ** 60]])('refuses an offset that is %s with 400 naming the cursor', async (_name, o) => {
    const error = await runReport(unusedWarehouse, { id: 'w', timezone: 'UTC' }, new Set(), { ...spec, cursor: cursor(o) } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).status).toBe(400);
    expect(JSON.stringify((error as ProblemError).errors)).toContain('#/cursor');
  });
});
