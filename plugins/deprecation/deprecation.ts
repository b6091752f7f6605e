import type { RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';

export interface DeprecationHeaders {
  deprecation: string;
  sunset?: string;
  link?: string;
}

/** RFC 9745 `Deprecation: @<epoch seconds>` and RFC 8594 `Sunset: <HTTP-date>`. */
export function deprecationHeaders(op: OperationInfo, link?: string): DeprecationHeaders | undefined {
  if (!op.deprecated) return undefined;
  // The generator refuses `deprecated: true` without x-weir-deprecated-at.
  return {
    deprecation: `@${Math.floor(Date.parse(op.deprecatedAt ?? '') / 1000)}`,
    sunset: op.sunset ? new Date(op.sunset).toUTCString() : undefined,
    link: link ? `<${link}>; rel="deprecation"; type="text/html"` : undefined,
  };
}

export function deprecationMiddleware(headers: DeprecationHeaders): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Deprecation', headers.deprecation);
    if (headers.sunset) res.setHeader('Sunset', headers.sunset);
    if (headers.link) res.setHeader('Link', headers.link);
    next();
  };
}
