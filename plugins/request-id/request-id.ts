import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { RequestIdOptions } from './schema.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48 bits of time and 80 random bits in Crockford base32, so ids sort by creation time. */
export function newRequestId(now = Date.now()): string {
  let time = '';
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[i]! % 32];
  return time + rand;
}

export function requestIdMiddleware(options: RequestIdOptions): RequestHandler {
  const header = options.header.toLowerCase();
  return (req, res, next) => {
    const inbound = req.headers[header];
    req.id = typeof inbound === 'string' && options.accept.test(inbound) ? inbound : newRequestId();
    res.setHeader(options.header, req.id);
    next();
  };
}
