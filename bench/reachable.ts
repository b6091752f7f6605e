import { connect } from 'node:net';

/** Whether something accepts TCP connections at the URL's host and port (used to skip benches needing Redis or PostgreSQL). */
export async function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port) }, () => (s.end(), resolve(true)));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(false));
  });
}
