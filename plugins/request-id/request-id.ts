import { randomFillSync } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { RequestIdOptions } from './schema.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48 bits of time and 80 random bits in Crockford base32, so ids sort by creation time. */
export function newRequestId(now = Date.now()): string {
  if (now !== prefixMs) {
    let time = '';
    for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
    prefixMs = now;
    prefix = time;
  }
  const b = randomPool();
  const o = poolOffset;
  poolOffset += 16;
  // Two characters per lookup (each from its own byte's low 5 bits).
  return (
    prefix +
    PAIRS[((b[o]! & 31) << 5) | (b[o + 1]! & 31)] +
    PAIRS[((b[o + 2]! & 31) << 5) | (b[o + 3]! & 31)] +
    PAIRS[((b[o + 4]! & 31) << 5) | (b[o + 5]! & 31)] +
    PAIRS[((b[o + 6]! & 31) << 5) | (b[o + 7]! & 31)] +
    PAIRS[((b[o + 8]! & 31) << 5) | (b[o + 9]! & 31)] +
    PAIRS[((b[o + 10]! & 31) << 5) | (b[o + 11]! & 31)] +
    PAIRS[((b[o + 12]! & 31) << 5) | (b[o + 13]! & 31)] +
    PAIRS[((b[o + 14]! & 31) << 5) | (b[o + 15]! & 31)]
  );
}

// The time part changes once a millisecond; requests in the same one share it.
let prefixMs = -1;
let prefix = '';
const PAIRS = Array.from({ length: 1024 }, (_, i) => CROCKFORD[i >> 5]! + CROCKFORD[i & 31]!);

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
