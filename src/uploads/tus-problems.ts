import type { ServerResponse } from 'node:http';
import { ERRORS } from '@tus/server';
import { ProblemError } from '../problem.js';

type TusError = { status_code: number; body: string };

/** tus's own errors whose status the spec (and tus clients) want otherwise, and their problem types. */
const mapped = new Map<string, { status: number; type: string; title: string; detail?: string }>([
  [ERRORS.INVALID_OFFSET.body, { status: 409, type: 'upload-offset-mismatch', title: 'Upload offset mismatch', detail: 'Upload-Offset does not match what the server holds; send HEAD for the current offset and resume from there.' }],
  [ERRORS.FILE_NO_LONGER_EXISTS.body, { status: 410, type: 'upload-gone', title: 'Upload gone', detail: 'The upload expired or was terminated; start a new one.' }],
  [ERRORS.FILE_NOT_FOUND.body, { status: 404, type: 'not-found', title: 'Not found', detail: 'No such upload, or the caller may not see it.' }],
  // A complete upload belongs to its ingest job: the spec answers 409, not tus's 400.
  [ERRORS.INVALID_TERMINATION.body, { status: 409, type: 'conflict', title: 'Conflict', detail: 'A complete upload belongs to its ingest job and cannot be terminated.' }],
  // Another request still holds the upload (tus says 500): 423 Locked is what tus clients retry.
  [ERRORS.ERR_LOCK_TIMEOUT.body, { status: 423, type: 'upload-locked', title: 'Upload locked', detail: 'Another request is still writing this upload; retry shortly.' }],
  [ERRORS.MISSING_OFFSET.body, { status: 400, type: 'bad-request', title: 'Bad request', detail: 'The Upload-Offset header is required.' }],
  [ERRORS.INVALID_CONTENT_TYPE.body, { status: 415, type: 'unsupported-media-type', title: 'Unsupported media type', detail: 'PATCH bodies must be Content-Type: application/offset+octet-stream.' }],
  [ERRORS.ERR_SIZE_EXCEEDED.body, { status: 413, type: 'payload-too-large', title: 'Payload too large', detail: 'The body goes past the Upload-Length declared at creation.' }],
  [ERRORS.ERR_MAX_SIZE_EXCEEDED.body, { status: 413, type: 'payload-too-large', title: 'Payload too large', detail: 'The upload is larger than the maximum upload size.' }],
]);

/**
 * tus answers its errors as text; the gateway answers problem+json everywhere (RFC 9457). The body
 * goes back through tus's `onResponseError`, and `markProblem` has the response's content type
 * follow (tus builds a fetch Response, which labels a string body text/plain).
 */
export function tusErrorAsProblem(err: TusError, instance: string | undefined): TusError {
  const known = mapped.get(err.body);
  const problem = known
    ? new ProblemError(known.status, { type: known.type, title: known.title, detail: known.detail })
    : err.status_code >= 500
      ? // tus appends the internal error's message to its 500s; that stays in the log.
        new ProblemError(err.status_code, { detail: 'The upload request could not be completed; resume it from the offset HEAD reports.' })
      : new ProblemError(err.status_code, { detail: err.body.trim() || undefined });
  return { status_code: problem.status, body: JSON.stringify(problem.toJSON(instance)) };
}

const PROBLEM = Symbol('weir.tusProblem');
type Marked = ServerResponse & { [PROBLEM]?: true };

/** Flags the response as carrying a problem body; `answerProblemsAsJson` then labels it. */
export function markProblem(res: ServerResponse | undefined): void {
  if (res) (res as Marked)[PROBLEM] = true;
}

/** Before handing a response to tus: a body marked as a problem goes out as application/problem+json. */
export function answerProblemsAsJson(res: ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    if ((res as Marked)[PROBLEM]) {
      const last = rest.length - 1;
      const headers = rest[last];
      if (Array.isArray(headers)) {
        const flat: unknown[] = headers.length && Array.isArray(headers[0]) ? (headers as unknown[][]).flat() : headers;
        rest[last] = flat.filter((_, i) => i % 2 === 0).flatMap((k, i) => (String(k).toLowerCase() === 'content-type' ? [] : [k, flat[2 * i + 1]]));
        (rest[last] as unknown[]).push('Content-Type', 'application/problem+json');
      } else {
        res.setHeader('Content-Type', 'application/problem+json');
        if (headers && typeof headers === 'object') rest[last] = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-type'));
      }
    }
    return writeHead(status, ...rest);
  }) as ServerResponse['writeHead'];
}
