import type { Request } from 'express';

const CLIENT_IP = Symbol('weir.clientIp');

/**
 * `req.ip` (the socket's peer, or what a trusted proxy says), worked out once per request: Express
 * recomputes it, parsing X-Forwarded-For, on every read, and audit and rate limits both read it.
 */
export function clientIp(req: Request): string | undefined {
  const r = req as Request & { [CLIENT_IP]?: string | undefined };
  if (CLIENT_IP in r) return r[CLIENT_IP];
  // Trusting no proxy, req.ip is the socket's peer (proxy-addr's answer, without its parsing).
  return (r[CLIENT_IP] = req.app.get('trust proxy') === false ? req.socket.remoteAddress : req.ip);
}
