import { describe, expect, it } from 'vitest';
import { newRequestId } from './request-id.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const timeOf = (id: string) => [...id.slice(0, 10)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0);

describe('newRequestId', () => {
  it('is a ULID: 26 Crockford base32 characters, the first ten the time in ms, the rest random', () => {
    const times = [0, 1, 31, 32, 1_764_000_000_123, 2 ** 48 - 1, Date.UTC(2026, 10, 22, 8)];
    for (const now of [...times, ...times]) {
      const id = newRequestId(now);
      expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(timeOf(id)).toBe(now);
    }
  });

  it('gives distinct ids within one millisecond, whose random parts use the whole alphabet', () => {
    const ids = Array.from({ length: 600 }, () => newRequestId(1_764_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids.flatMap((id) => [...id.slice(10)])).size).toBe(32);
    expect(new Set(ids.map((id) => id.slice(0, 10))).size).toBe(1);
  });

  it('sorts by creation time', () => {
    const ids = [5, 1_000, 999_999, 1_764_000_000_000].map((t) => newRequestId(t));
    expect([...ids].sort()).toEqual(ids);
  });
});
