import type { Request, RequestHandler, Response } from 'express';

/**
 * Runs a middleware that only sets fixed response headers (helmet without function directives)
 * once, at boot, and replays what it did on each request, without its dozen inner middlewares.
 * Throws at boot if the middleware does anything else, so a dynamic header can't be frozen by mistake.
 */
export function staticHeaders(middleware: RequestHandler): RequestHandler {
  const set: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  let passed = false;
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => void set.push([name, value]),
    removeHeader: (name: string) => void removed.push(name),
  };
  const probe = new Proxy({} as Request, { get: () => { throw new Error('staticHeaders: the middleware reads the request'); } });
  void middleware(probe, recorder as unknown as Response, (err?: unknown) => {
    if (err) throw err;
    passed = true;
  });
  if (!passed) throw new Error('staticHeaders: the middleware did not pass the request on synchronously');
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
    next();
  };
}
