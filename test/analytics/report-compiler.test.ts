import { describe, expect, it } from 'vitest';
import { compileReport, type ReportSpec } from '../../src/analytics/report-compiler.js';

const site = { id: '123e4567-e89b-12d3-a456-426614174000', timezone: 'America/New_York' };
const range = { start_date: '2026-01-01', end_date: '2026-01-30' };
const all = { analytics_hits_15m: 0, analytics_pages_15m: 0, analytics_sessions_15m: 0 };
const sources = (spec: Partial<ReportSpec>, opts: Parameters<typeof compileReport>[3] = { rollupsFrom: all }, tz = site.timezone) =>
  compileReport({ date_range: range, metrics: ['pageviews', 'sessions'], ...spec }, { ...site, timezone: tz }, new Set(['goal_a']), opts).sources;

describe('report compiler: choosing a rollup', () => {
  it('reads the rollups when they hold every dimension and filter, the raw tables otherwise', () => {
    expect(sources({ dimensions: ['date', 'country'] })).toEqual({ hits: 'analytics_hits_15m', sessions: 'analytics_sessions_15m:dimensions' });
    expect(sources({ dimensions: ['page'] })).toEqual({ hits: 'analytics_pages_15m', sessions: 'analytics_sessions_15m:pages' });
    expect(sources({ dimensions: ['page', 'hostname', 'date'] })).toEqual({ hits: 'analytics_pages_15m', sessions: 'analytics_sessions_15m:pages' });
    expect(sources({ dimensions: ['referrer'] })).toEqual({ hits: 'analytics_hits', sessions: 'analytics_sessions' });
    expect(sources({ dimensions: ['hour'], filters: [{ dimension: 'page', operator: 'equals', value: '/' }] })).toEqual({ hits: 'analytics_pages_15m', sessions: 'analytics_sessions_15m:pages' });
    expect(sources({ dimensions: ['page'], filters: [{ dimension: 'country', operator: 'equals', value: 'DE' }] })).toEqual({ hits: 'analytics_hits', sessions: 'analytics_sessions' });
  });

  it('reads one goal\'s figures, ranges before a rollup was complete, and zones off the quarter hour from the raw tables', () => {
    expect(sources({ metrics: ['goal_completions'], goal_id: 'goal_a' })).toEqual({ sessions: 'analytics_sessions' });
    expect(sources({}, {})).toEqual({ hits: 'analytics_hits', sessions: 'analytics_sessions' });
    const createdMidJanuary = { rollupsFrom: { ...all, analytics_hits_15m: Date.parse('2026-01-15T00:00:00Z'), analytics_pages_15m: Date.parse('2026-01-15T00:00:00Z') } };
    expect(sources({}, createdMidJanuary).hits).toBe('analytics_hits');
    expect(sources({ date_range: { start_date: '2026-01-17', end_date: '2026-01-20' } }, createdMidJanuary).hits).toBe('analytics_hits_15m');
    // Kathmandu (+5:45) and Kolkata (+5:30) are whole quarter hours; Monrovia's mean time in 1970 (-0:44:30) is not.
    expect(sources({}, undefined, 'Asia/Kathmandu').hits).toBe('analytics_hits_15m');
    expect(sources({ date_range: { start_date: '1970-03-01', end_date: '1970-03-02' } }, undefined, 'Africa/Monrovia').hits).toBe('analytics_hits');
  });
});
