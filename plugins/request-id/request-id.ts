import { randomFillSync } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { RequestIdOptions } from './schema.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID: 48 bits of time and 80 random bits in Crockford base32, so ids sort by creation time.
 * Made by one String.fromCharCode, so it is one flat string from the start: joined with `+` it was
 * a tree of a dozen string pieces, which the audit record held (and the GC copied) until it was written.
 */
export function newRequestId(now = Date.now()): string {
  if (now !== prefixMs) {
    for (let t = now, i = 9; i >= 0; i--, t = Math.floor(t / 32)) prefix[i] = CODES[t % 32]!;
    prefixMs = now;
  }
  const b = randomPool();
  const o = poolOffset;
  poolOffset += 16;
  // Each random character from its own byte's low 5 bits.
  return String.fromCharCode(
    prefix[0]!, prefix[1]!, prefix[2]!, prefix[3]!, prefix[4]!, prefix[5]!, prefix[6]!, prefix[7]!, prefix[8]!, prefix[9]!,
    CODES[b[o]! & 31]!, CODES[b[o + 1]! & 31]!, CODES[b[o + 2]! & 31]!, CODES[b[o + 3]! & 31]!,
    CODES[b[o + 4]! & 31]!, CODES[b[o + 5]! & 31]!, CODES[b[o + 6]! & 31]!, CODES[b[o + 7]! & 31]!,
    CODES[b[o + 8]! & 31]!, CODES[b[o + 9]! & 31]!, CODES[b[o + 10]! & 31]!, CODES[b[o + 11]! & 31]!,
    CODES[b[o + 12]! & 31]!, CODES[b[o + 13]! & 31]!, CODES[b[o + 14]! & 31]!, CODES[b[o + 15]! & 31]!,
  );
}

const CODES = Uint8Array.from(CROCKFORD, (c) => c.charCodeAt(0));
// The time part's character codes change once a millisecond; requests in the same one share them.
let prefixMs = -1;
const prefix = new Uint8Array(10);

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
