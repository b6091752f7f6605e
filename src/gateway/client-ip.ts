import type { Request } from 'express';

const CLIENT_IP = Symbol('weir.clientIp');

/**
 * `req.ip` (the socket's peer, or what a trusted proxy says), worked out once per request where it
 * costs anything: Express recomputes it, parsing X-Forwarded-For, on every read, and audit and rate
 * limits both read it. Trusting no proxy, it is the socket's peer, which the socket keeps itself
 * once read (so a keep-alive connection's requests share it), and the request gets no extra member.
 */
export function clientIp(req: Request): string | undefined {
  if (req.app.get('trust proxy') === false) return req.socket.remoteAddress;
  const r = req as Request & { [CLIENT_IP]?: string | undefined };
  if (CLIENT_IP in r) return r[CLIENT_IP];
  return (r[CLIENT_IP] = req.ip);
}
