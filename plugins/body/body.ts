import express, { type RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import { parseByteSize } from '../../src/config.js';
import { ProblemError } from '../../src/problem.js';

export interface BodySettings {
  limit: number;
  stream: boolean;
  contentTypes: readonly string[];
}

export function bodySettings(op: OperationInfo, defaultLimit: number): BodySettings | undefined {
  if (op.requestContentTypes.length === 0) return undefined;
  return {
    limit: op.body?.limit ? parseByteSize(op.body.limit) : defaultLimit,
    stream: Boolean(op.body?.stream),
    contentTypes: op.requestContentTypes,
  };
}

const isJson = (ct: string) => ct === 'application/json' || /\+json$/.test(ct);

/**
 * Parses the body as the operation's declared content types, within its size limit. Streaming
 * operations read the body themselves; for them only a declared Content-Length is checked here.
 */
export function bodyMiddleware(settings: BodySettings): RequestHandler[] {
  const tooLarge = (limit: number) =>
    new ProblemError(413, {
      detail: `The request body is larger than this operation's limit of ${formatBytes(limit)}.`,
      extra: { limit_bytes: limit },
    });
  const checkLength: RequestHandler = (req, _res, next) => {
    const length = Number(req.headers['content-length']);
    next(Number.isFinite(length) && length > settings.limit ? tooLarge(settings.limit) : undefined);
  };
  if (settings.stream) return [checkLength];
  const parsers: RequestHandler[] = [checkLength];
  const json = settings.contentTypes.filter(isJson);
  if (json.length) parsers.push(express.json({ limit: settings.limit, type: json }));
  if (settings.contentTypes.includes('application/x-www-form-urlencoded')) {
    parsers.push(express.urlencoded({ limit: settings.limit, extended: false }));
  }
  const text = settings.contentTypes.filter((ct) => ct.startsWith('text/'));
  if (text.length) parsers.push(express.text({ limit: settings.limit, type: text }));
  return parsers.map((parse) => (req, res, next) => parse(req, res, (err?: unknown) => next(err && toProblem(err, settings.limit))));
}

/** body-parser's errors carry a `type`; each becomes the problem a client can act on. */
function toProblem(err: unknown, limit: number): unknown {
  const e = err as { type?: string; message?: string; charset?: string; encoding?: string };
  switch (e.type) {
    case 'entity.parse.failed':
      return new ProblemError(400, {
        type: 'malformed-body',
        title: 'Malformed request body',
        detail: `The body could not be parsed: ${e.message}. Send valid JSON.`,
        errors: [{ in: 'body', pointer: '#', detail: e.message ?? 'parse error' }],
      });
    case 'entity.too.large':
      return new ProblemError(413, {
        detail: `The request body is larger than this operation's limit of ${formatBytes(limit)}.`,
        extra: { limit_bytes: limit },
      });
    case 'charset.unsupported':
      return new ProblemError(415, { detail: `Charset ${e.charset} is not supported; send UTF-8.` });
    case 'encoding.unsupported':
      return new ProblemError(415, { detail: `Content-Encoding ${e.encoding} is not supported here.` });
    case 'request.aborted':
      return new ProblemError(400, { detail: 'The client aborted the request before the body was complete.' });
    case 'request.size.invalid':
      return new ProblemError(400, { detail: 'The body is shorter or longer than its Content-Length.' });
    default:
      return err;
  }
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1 && n % 1024 === 0) {
    n /= 1024;
    i++;
  }
  return `${n} ${units[i]}`;
}
