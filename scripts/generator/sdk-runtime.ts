// The Weir SDK's runtime: transport, authentication, retries, errors and pagination.
// Copied verbatim into generated/sdk/src/runtime.ts by `npm run generate`; edit it in scripts/generator/.

export interface ClientOptions {
  /** Where the gateway is, such as http://localhost:8080. */
  baseUrl: string;
  /** A bearer token, or a function returning one (called before every request, so it can refresh). */
  token?: string | (() => string | Promise<string>);
  /** An API key, sent in the spec's API-key header. Ignored when a token is given. */
  apiKey?: string;
  /** Retries of a 429 or 503 answer, honouring Retry-After. Default 3; 0 turns retrying off. */
  maxRetries?: number;
  /** The longest wait between retries, in ms. A longer Retry-After is not waited for: the error is raised. Default 30000. */
  maxRetryDelayMs?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch implementation; the global fetch by default. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  maxRetries?: number;
}

export interface OperationRef {
  operationId: string;
  method: string;
  path: string;
}

export interface RequestArgs {
  params?: object;
  query?: object;
  headers?: Record<string, string>;
  body?: unknown;
  raw?: { contentType: string; data: string | Uint8Array | Blob };
}

/** An RFC 9457 problem document as the gateway sends it. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { in?: string; pointer?: string; parameter?: string; line?: number; detail: string }[];
  [key: string]: unknown;
}

/** Any non-2xx answer. */
export class WeirHttpError extends Error {
  constructor(
    readonly operationId: string,
    readonly status: number,
    readonly headers: Headers,
    readonly body: unknown,
    message?: string,
  ) {
    super(message ?? `${operationId} failed with HTTP ${status}`);
    this.name = 'WeirHttpError';
  }

  get requestId(): string | undefined {
    return this.headers.get('x-request-id') ?? undefined;
  }
}

/** A non-2xx answer carrying an application/problem+json document. */
export class WeirProblemError extends WeirHttpError {
  constructor(operationId: string, headers: Headers, readonly problem: ProblemDocument) {
    super(operationId, problem.status, headers, problem, `${operationId}: ${problem.title}${problem.detail ? ` - ${problem.detail}` : ''}`);
    this.name = 'WeirProblemError';
  }
}

export class BaseClient {
  readonly #options: Required<Pick<ClientOptions, 'maxRetries' | 'maxRetryDelayMs'>> & ClientOptions;
  readonly #fetch: typeof fetch;

  constructor(
    options: ClientOptions,
    private readonly apiKeyHeader: string,
  ) {
    this.#options = { maxRetries: 3, maxRetryDelayMs: 30_000, ...options, baseUrl: options.baseUrl.replace(/\/+$/, '') };
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  protected async request(op: OperationRef, args: RequestArgs = {}, options: RequestOptions = {}): Promise<unknown> {
    const url = this.#url(op.path, args);
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json;q=0.9, */*;q=0.1' };
    Object.assign(headers, this.#options.headers, args.headers, options.headers);
    await this.#authenticate(headers);
    let body: string | Uint8Array | Blob | undefined;
    if (args.raw) {
      headers['content-type'] = args.raw.contentType;
      body = args.raw.data;
    } else if (args.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(args.body);
    }
    const maxRetries = options.maxRetries ?? this.#options.maxRetries;
    for (let attempt = 0; ; attempt++) {
      const response = await this.#fetch(url, { method: op.method, headers, body: body as NonNullable<Parameters<typeof fetch>[1]>['body'], signal: options.signal });
      if (response.ok) return readBody(response);
      if ((response.status === 429 || response.status === 503) && attempt < maxRetries) {
        const delay = retryDelay(response.headers.get('retry-after'), attempt);
        if (delay <= this.#options.maxRetryDelayMs) {
          await response.body?.cancel();
          await sleep(delay, options.signal);
          continue;
        }
      }
      throw await toError(op.operationId, response);
    }
  }

  /** Follows `next_cursor` from page to page, yielding each page. */
  protected async *paginate<A extends { query?: object }, P extends { next_cursor?: string | null }>(
    fetchPage: (args: A) => Promise<P>,
    args: A,
  ): AsyncGenerator<P, void, undefined> {
    let current = args;
    for (;;) {
      const page = await fetchPage(current);
      yield page;
      if (!page.next_cursor) return;
      current = { ...current, query: { ...(current.query ?? {}), cursor: page.next_cursor } };
    }
  }

  async #authenticate(headers: Record<string, string>): Promise<void> {
    const { token, apiKey } = this.#options;
    if (token) headers.authorization = `Bearer ${typeof token === 'function' ? await token() : token}`;
    else if (apiKey) headers[this.apiKeyHeader.toLowerCase()] = apiKey;
  }

  #url(path: string, args: RequestArgs): string {
    const params = (args.params ?? {}) as Record<string, unknown>;
    const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined || value === null) throw new TypeError(`Missing path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries((args.query ?? {}) as Record<string, unknown>)) {
      if (value === undefined || value === null) continue;
      for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
    }
    const qs = search.toString();
    return `${this.#options.baseUrl}${filled}${qs ? `?${qs}` : ''}`;
  }
}

/** Async-iterates the items of every page. */
export async function* items<T>(pages: AsyncIterable<{ items: T[] }>): AsyncGenerator<T, void, undefined> {
  for await (const page of pages) yield* page.items;
}

async function readBody(response: Response): Promise<unknown> {
  if (response.status === 204 || response.status === 205) return undefined;
  const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) {
    const text = await response.text();
    return text ? JSON.parse(text) : undefined;
  }
  if (type.startsWith('text/')) return response.text();
  if (!type && response.headers.get('content-length') === '0') return undefined;
  return response;
}

async function toError(operationId: string, response: Response): Promise<WeirHttpError> {
  const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const text = await response.text();
  if (type === 'application/problem+json') {
    try {
      return new WeirProblemError(operationId, response.headers, JSON.parse(text) as ProblemDocument);
    } catch {
      // not parseable: fall through to the generic error
    }
  }
  let body: unknown = text;
  if (type === 'application/json') {
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
  }
  return new WeirHttpError(operationId, response.status, response.headers, body);
}

/** Retry-After in seconds or as an HTTP date; without it, exponential backoff with jitter. */
export function retryDelay(retryAfter: string | null, attempt: number, now = Date.now()): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const base = Math.min(8000, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
