import { describe, expect, it } from 'vitest';
import { localDateHour } from '../../src/analytics/timezone.js';

describe('localDateHour', () => {
  it('agrees with Intl at every quarter hour across DST changes and in half-hour zones', () => {
    const zones = ['America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'UTC'];
    const start = Date.parse('2025-03-08T00:07:00Z');
    for (const zone of zones) {
      const f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
      for (let i = 0; i < 4 * 24 * 3; i++) {
        const ms = start + i * 15 * 60_000 + (i % 7) * 60_000;
        const parts = Object.fromEntries(f.formatToParts(ms).map((p) => [p.type, p.value]));
        expect(localDateHour(ms, zone), `${zone} ${new Date(ms).toISOString()}`).toEqual({ date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) });
      }
    }
  });
});
