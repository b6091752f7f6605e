/** Sends `count` requests one after another; returns their statuses. */
export async function statuses(url: string, count: number, init?: RequestInit): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}
