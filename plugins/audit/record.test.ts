import { describe, expect, it } from 'vitest';
import { isoTime } from './record.js';

describe('audit record time', () => {
  it('is Date#toISOString, also across second, day and year boundaries and out of order', () => {
    const times = [0, 999, 1000, 1_001, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2026, 10, 22, 8, 0, 0, 7), 1_764_000_000_123];
    for (const ms of [...times, ...times.reverse(), ...Array.from({ length: 2500 }, (_, i) => 1_764_000_000_000 + i * 7)]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
