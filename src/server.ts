import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { WeirApp } from './app.js';
import type { Config } from './config.js';

export interface RunningServer {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the timeout), then closes the app. */
  shutdown(reason: string): Promise<void>;
}

/** Hands each HTTP upgrade to the app's WebSocket endpoints in order; one nobody takes is refused. */
export function attachUpgrades(server: Server, app: WeirApp): void {
  server.on('upgrade', (req, socket, head) => {
    for (const handle of app.weir.upgradeHandlers) if (handle(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
}

/** Listens on config.port/host (HTTPS, TLS 1.2 minimum, when a certificate is configured). */
export async function listen(app: WeirApp, config: Config, logger: Logger): Promise<RunningServer> {
  const server: Server = config.tls
    ? createHttpsServer(
        { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), minVersion: 'TLSv1.2' },
        app,
      )
    : createHttpServer(app);
  attachUpgrades(server, app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = ['0.0.0.0', '::', '127.0.0.1', '::1'].includes(config.host) ? 'localhost' : config.host;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${port}`;

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string) =>
    (stopping ??= (async () => {
      logger.info({ reason, inFlight: sockets.size }, 'shutting down: no new connections, draining in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections become idle as their last response ends; close each one then.
      server.closeIdleConnections();
      const sweeper = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        logger.warn({ timeoutMs: config.http.shutdownTimeoutMs }, 'drain timed out; closing remaining connections');
        server.closeAllConnections();
      }, config.http.shutdownTimeoutMs);
      await closed;
      clearTimeout(timer);
      clearInterval(sweeper);
      await app.weir.close();
      logger.info('shutdown complete');
    })());
  return { server, url, shutdown };
}
