/** IANA time zone helpers; reports and sessions count days in the website's zone. */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

const QUARTER_HOUR_MS = 15 * 60_000;
// Zone offsets change only on quarter-hour boundaries, so one Intl call per zone and quarter hour
// serves every hit in it (Intl formatting is otherwise the slowest step of a hit).
const offsets = new Map<string, number>();

function offsetAt(ms: number, timeZone: string): number {
  const bucket = Math.floor(ms / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
  const key = `${timeZone}|${bucket}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const parts = formatter(timeZone).formatToParts(bucket);
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    offset = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - bucket;
    if (offsets.size > 10_000) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

/** The calendar date (`YYYY-MM-DD`) and hour (0-23) of an instant in a time zone. */
export function localDateHour(ms: number, timeZone: string): { date: string; hour: number } {
  const local = new Date(ms + offsetAt(ms, timeZone));
  return { date: local.toISOString().slice(0, 10), hour: local.getUTCHours() };
}

/**
 * Whether the zone's offset from UTC is a whole number of quarter hours at each instant, so local
 * midnights and hours there fall on UTC quarter-hour boundaries (true of every zone in use today;
 * not of historical local mean times such as -4:56:02).
 */
export function quarterHourAligned(timeZone: string, instants: number[]): boolean {
  return instants.every((ms) => offsetAt(ms, timeZone) % QUARTER_HOUR_MS === 0);
}
