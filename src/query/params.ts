/** Collects query parameters; every value reaches ClickHouse as a typed `{name:Type}` placeholder. */
export class ParamBag {
  readonly values: Record<string, unknown> = {};
  #next = 0;

  add(value: unknown, type: string): string {
    const name = `p${this.#next++}`;
    this.values[name] = value;
    return `{${name}:${type}}`;
  }
}
