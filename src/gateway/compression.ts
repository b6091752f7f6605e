import compression from 'compression';
import type { RequestHandler } from 'express';

/**
 * compression(), for the requests it could compress. A request without Accept-Encoding gets an
 * identity response from it anyway (its `enforceEncoding` is identity), yet it wraps write/end/on
 * and hooks the headers of every response to find that out: a good part of a small answer's cost.
 * Such requests only get the `Vary: Accept-Encoding` it would add (on every response rather than
 * only compressible ones, which caches treat the same). (Its `res.flush()` is then absent: nothing
 * here calls it.)
 */
export function compressionWhenAccepted(options?: compression.CompressionOptions): RequestHandler {
  const compress = compression(options);
  return (req, res, next) => {
    if (req.headers['accept-encoding'] !== undefined) return compress(req, res, next);
    if (res.getHeader('Vary') === undefined) res.setHeader('Vary', 'Accept-Encoding');
    else res.vary('Accept-Encoding');
    next();
  };
}
