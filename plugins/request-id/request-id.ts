import { randomFillSync } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { RequestIdOptions } from './schema.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48 bits of time and 80 random bits in Crockford base32, so ids sort by creation time. */
export function newRequestId(now = Date.now()): string {
  let time = '';
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  const bytes = randomPool();
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[poolOffset + i]! % 32];
  poolOffset += 16;
  return time + rand;
}

// One randomFillSync per 256 ids instead of a randomBytes(16) call each: that call was a few percent
// of a request's CPU. The bytes are as random; each is used once.
const POOL_SIZE = 16 * 256;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
function randomPool(): Buffer {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool;
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
