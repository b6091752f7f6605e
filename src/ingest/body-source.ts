import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ProblemError } from '../problem.js';

export interface BodySource {
  chunks: AsyncIterable<Buffer>;
  /** SHA-256 of the decoded bytes read so far (complete once `chunks` is exhausted; unused with `hash: false`). */
  hash: Hash;
}

export const tooLarge = (limit: number, what = 'The request body') =>
  new ProblemError(413, { detail: `${what} is larger than this operation's limit of ${limit} bytes.`, extra: { limit_bytes: limit } });

/**
 * The request body as decoded chunks, gunzipped when asked, refusing (413) as soon as the
 * decoded size passes `limit` so a gzip bomb never inflates past it. A body that ends early
 * is a 400 naming how far it got.
 */
export function openBody(input: Readable, opts: { gzip: boolean; limit: number; hash?: boolean }): BodySource {
  const hashing = opts.hash ?? true;
  const hash = createHash('sha256');
  async function* decoded(): AsyncGenerator<Buffer> {
    const stream: Readable = opts.gzip ? input.pipe(createGunzip({ chunkSize: 64 * 1024 })) : input;
    if (opts.gzip) input.once('error', (err) => stream.destroy(err));
    let total = 0;
    let aborted = false;
    input.once('aborted', () => (aborted = true));
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > opts.limit) {
          throw tooLarge(opts.limit, opts.gzip ? 'The decompressed body' : 'The request body');
        }
        if (hashing) hash.update(chunk);
        yield chunk;
      }
    } catch (err) {
      if (err instanceof ProblemError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code.startsWith('Z_')) {
        throw new ProblemError(400, { type: 'malformed-body', title: 'Malformed request body', detail: `The gzip body is corrupt or truncated (${(err as Error).message}) after ${total} decoded bytes.` });
      }
      throw truncated(total);
    } finally {
      if (opts.gzip) {
        stream.destroy();
        // Stopped early (a 413 for a bomb): the rest of the compressed body is read and dropped,
        // not left unread, so the client gets the answer instead of a connection reset.
        input.unpipe();
        if (!input.destroyed && (input as { complete?: boolean }).complete === false) input.resume();
      }
    }
    if (aborted || (input as { complete?: boolean }).complete === false) throw truncated(total);
  }
  return { chunks: decoded(), hash };
}

function truncated(bytes: number): ProblemError {
  return new ProblemError(400, {
    type: 'truncated-body',
    title: 'Truncated request body',
    detail: `The body ended early, after ${bytes} bytes: the connection closed before it was complete.`,
  });
}
