/**
 * The dataset the data benches (ingest, query, export) work on: ~100-byte event rows with a time,
 * a region, a user, an amount and a quantity, sorted by region and time.
 */
export function benchDataset(name: string) {
  return {
    name,
    columns: [
      { name: 'event_time', type: 'timestamp', nullable: false },
      { name: 'region', type: 'string', nullable: false },
      { name: 'user_id', type: 'string' },
      { name: 'amount', type: 'float' },
      { name: 'qty', type: 'int' },
    ],
    time_column: 'event_time',
    sort_key: ['region', 'event_time'],
  };
}

/** Fills a bench dataset's table inside ClickHouse: `rows` rows over `days` days from 2026-01-01 UTC, seven regions, 100k users. */
export function fillSql(table: string, rows: number, days: number): string {
  return `INSERT INTO ${table} (event_time, region, user_id, amount, qty)
    SELECT toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(intHash32(number) % ${days * 86_400_000}),
      concat('eu-west-', toString(number % 7)), concat('u_', toString(intHash32(number + 1) % 100000)),
      (number % 1000) / 4, number % 100
    FROM numbers(${rows})`;
}
