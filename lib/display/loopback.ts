/**
 * A loopback HTTP endpoint served by the kernel process: the front-end-neutral way for a cell
 * output's script to reach the kernel. JupyterLab, Notebook 7 and VS Code give output scripts no
 * handle on the kernel (classic Notebook's `Jupyter.notebook.kernel` is gone there), but any page
 * shown on the kernel's machine can `fetch` 127.0.0.1.
 *
 * One server per kernel process, on 127.0.0.1 and a port the system picks, never keeping the
 * process alive (unref). Each `openLoopbackRoute` call makes a route with its own random token
 * (144 bits); a request must name the route in its path and carry the token in the
 * `X-Diffusion-Token` header, else it is refused (403) before its body is read. Bodies are JSON,
 * at most `maxBytes`; answers are JSON. CORS allows any origin (the page's origin differs per
 * front-end; the token is the credential), including Chromium's private-network preflight.
 */
import * as http from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** What a page needs to call a route: POST `url` with header `X-Diffusion-Token: token`. */
export interface LoopbackRoute {
  url: string;
  token: string;
}

/** A route's handler: the parsed JSON body → the JSON answer. */
export type LoopbackHandler = (body: unknown) => unknown;

interface Route {
  token: Buffer;
  handler: LoopbackHandler;
  maxBytes: number;
}

const TOKEN_HEADER = 'x-diffusion-token';
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
  'Access-Control-Allow-Headers': `content-type, ${TOKEN_HEADER}`,
  'Access-Control-Allow-Private-Network': 'true',
  'Access-Control-Max-Age': '600',
};

/** Routes kept per process: the newest outputs' (older outputs' sends get 404). */
const MAX_ROUTES = 64;

let server: Promise<{ port: number; routes: Map<string, Route> }> | undefined;

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...CORS, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

function sameToken(given: string | string[] | undefined, expected: Buffer): boolean {
  if (typeof given !== 'string') return false;
  const b = Buffer.from(given);
  return b.length === expected.length && timingSafeEqual(b, expected);
}

function serve(routes: Map<string, Route>, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS);
    res.end();
    return;
  }
  const route = routes.get(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  if (!route) return answer(res, 404, { status: 'error', message: 'no such route on the kernel (restarted? run the cell again)' });
  if (req.method !== 'POST') return answer(res, 405, { status: 'error', message: `use POST, not ${req.method}` });
  if (!sameToken(req.headers[TOKEN_HEADER], route.token)) {
    return answer(res, 403, { status: 'error', message: 'wrong or missing token (run the cell again for a fresh one)' });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > route.maxBytes && !refused) {
      refused = true;
      answer(res, 413, { status: 'error', message: `the request is over ${route.maxBytes} bytes` });
      req.destroy();
    } else if (!refused) chunks.push(chunk);
  });
  req.on('end', () => {
    if (refused) return;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, { status: 'error', message: 'the request body is not JSON' });
    }
    try {
      answer(res, 200, route.handler(body));
    } catch (e) {
      answer(res, 500, { status: 'error', message: (e instanceof Error ? e.message : String(e)).split('\n')[0] });
    }
  });
}

function start(): Promise<{ port: number; routes: Map<string, Route> }> {
  const routes = new Map<string, Route>();
  const srv = http.createServer((req, res) => serve(routes, req, res));
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      srv.unref(); // the kernel exits on shutdown as if this server were not there
      resolve({ port: (srv.address() as { port: number }).port, routes });
    });
  });
}

/**
 * Adds a route to this process's loopback server (started on first use) and returns its URL and
 * token. `name` is a path segment ([A-Za-z0-9_-]); each call gets a fresh path and token, so an
 * old output's token stops at its own route.
 */
export async function openLoopbackRoute(name: string, handler: LoopbackHandler, opts: { maxBytes?: number } = {}): Promise<LoopbackRoute> {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`openLoopbackRoute: the name "${name}" must be letters, digits, - or _`);
  server ??= start();
  let s: Awaited<typeof server>;
  try {
    s = await server;
  } catch (e) {
    server = undefined;
    throw e;
  }
  const token = randomBytes(18).toString('base64url');
  const pathname = `/${name}/${randomBytes(6).toString('hex')}`;
  s.routes.set(pathname, { token: Buffer.from(token), handler, maxBytes: opts.maxBytes ?? 8 << 20 });
  // Re-running a cell adds a route; the oldest go once there are MAX_ROUTES (Map keeps insertion order).
  for (const old of s.routes.keys()) {
    if (s.routes.size <= MAX_ROUTES) break;
    s.routes.delete(old);
  }
  return { url: `http://127.0.0.1:${s.port}${pathname}`, token };
}

/** The header name a page sends the token in. */
export const LOOPBACK_TOKEN_HEADER = 'X-Diffusion-Token';
