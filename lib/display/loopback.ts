/**
 * A loopback HTTP endpoint served by the kernel process: the front-end-neutral way for a cell
 * output's script to reach the kernel. JupyterLab, Notebook 7 and VS Code give output scripts no
 * handle on the kernel (classic Notebook's `Jupyter.notebook.kernel` is gone there), but any page
 * shown on the kernel's machine can `fetch` 127.0.0.1.
 *
 * One server per kernel process, on 127.0.0.1 and a port the system picks. Each
 * `openLoopbackRoute` call makes a route (a random path) with a one-time claim code, which goes in
 * the cell's output. The page spends it at once: a POST with the code in `X-Diffusion-Claim`
 * answers the route's token (144 random bits), once; the token then goes in `X-Diffusion-Token`
 * on every call. So what Jupyter saves with the notebook (and the HTML report) holds a code that
 * is spent by the time it is saved, never a token that works. CORS allows any origin (the page's
 * origin differs per front-end; the code and the token are the credential), including Chromium's
 * private-network preflight.
 *
 * The server bounds its clients (LOOPBACK_LIMITS): a few connections at a time (more are dropped
 * as they come); headers within 10 s, the whole request within 10 s, an idle socket closed after
 * 10 s; one request per connection. A request that is refused (no such route, not POST, no or
 * wrong token or code) is answered and its connection closed without reading its body. Bodies
 * are JSON of at most the route's `maxBytes` (a Content-Length above it is refused before
 * reading) and nested at most LOOPBACK_LIMITS.maxDepth deep. Neither the server nor its sockets
 * keep the process alive (unref), and it is closed when the process is about to exit.
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** What a page needs to call a route: POST `url` with header `X-Diffusion-Claim: claim` once for the token. */
export interface LoopbackRoute {
  url: string;
  /** One-time code that the page trades for the route's token (LOOPBACK_CLAIM_HEADER). */
  claim: string;
}

/** A route's handler: the parsed JSON body → the JSON answer (or a promise of it). */
export type LoopbackHandler = (body: unknown) => unknown;

/** The bounds the server keeps (see the file comment). */
export const LOOPBACK_LIMITS = {
  /** Connections open at once; further ones are closed as they are accepted. */
  maxConnections: 8,
  /** Time to send the request's headers. */
  headersTimeoutMs: 10_000,
  /** Time to send the whole request, body included. */
  requestTimeoutMs: 10_000,
  /** A socket with no traffic for this long is closed. */
  idleTimeoutMs: 10_000,
  /** Nesting of arrays and objects in a JSON body. */
  maxDepth: 32,
  /** Routes kept per process: the newest outputs' (older outputs' sends get 404). */
  maxRoutes: 64,
  /** Default body size of a route. */
  maxBytes: 1 << 20,
} as const;

interface Route {
  claim: Buffer;
  /** Made when the claim is spent; undefined until then. */
  token?: Buffer;
  handler: LoopbackHandler;
  maxBytes: number;
}

interface Server {
  srv: http.Server;
  port: number;
  routes: Map<string, Route>;
  sockets: Set<Socket>;
}

const TOKEN_HEADER = 'x-diffusion-token';
const CLAIM_HEADER = 'x-diffusion-claim';
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'POST, OPTIONS',
  'Access-Control-Allow-Headers': `content-type, ${TOKEN_HEADER}, ${CLAIM_HEADER}`,
  'Access-Control-Allow-Private-Network': 'true',
  'Access-Control-Max-Age': '600',
};

let server: Promise<Server> | undefined;

/**
 * Answers and ends the exchange. Every answer closes its connection (Connection: close; Node then
 * destroys the socket once the answer is written), so a body that was not read is never read:
 * left open, Node would read it to the end to reuse the connection, at whatever pace the client
 * sends it.
 */
function answer(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.shouldKeepAlive = false;
  res.writeHead(status, { ...CORS, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

const refuse = (res: http.ServerResponse, status: number, message: string) => answer(res, status, { status: 'error', message });

function same(given: string | string[] | undefined, expected: Buffer | undefined): boolean {
  if (typeof given !== 'string' || !expected) return false;
  const b = Buffer.from(given);
  return b.length === expected.length && timingSafeEqual(b, expected);
}

/** The deepest nesting of arrays and objects in JSON text (outside strings), stopping past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // A backslash escapes the next character; a quote ends the string.
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** The body as JSON: one line of why not when it is not JSON or nests too deep. */
function parseBody(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  // JSON.parse of millions of nested brackets takes seconds and hundreds of MB: refused first.
  if (jsonDepth(text, LOOPBACK_LIMITS.maxDepth) > LOOPBACK_LIMITS.maxDepth)
    return { ok: false, message: `the request body nests deeper than ${LOOPBACK_LIMITS.maxDepth} levels` };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, message: 'the request body is not JSON' };
  }
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
}

function serve(routes: Map<string, Route>, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'OPTIONS') {
    res.shouldKeepAlive = false;
    res.writeHead(204, CORS);
    res.end();
    return;
  }
  let pathname: string;
  try {
    pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  } catch {
    return refuse(res, 400, 'the request target is not a path');
  }
  const route = routes.get(pathname);
  if (!route) return refuse(res, 404, 'no such route on the kernel (restarted? run the cell again)');
  if (req.method !== 'POST') return refuse(res, 405, `use POST, not ${req.method}`);
  // First contact: the one-time code from the output for the token, which is never in the output.
  if (req.headers[CLAIM_HEADER] !== undefined) {
    if (!same(req.headers[CLAIM_HEADER], route.claim)) return refuse(res, 403, 'wrong claim code (run the cell again for a fresh one)');
    if (route.token)
      return refuse(
        res,
        409,
        'this canvas is already connected to another page (reloaded in a new tab?): run its cell again for a new one',
      );
    const token = randomBytes(18).toString('base64url');
    route.token = Buffer.from(token);
    return answer(res, 200, { status: 'ok', token });
  }
  if (!same(req.headers[TOKEN_HEADER], route.token)) return refuse(res, 403, 'wrong or missing token (run the cell again for a fresh one)');
  const declared = Number(req.headers['content-length']);
  if (declared > route.maxBytes) return refuse(res, 413, `the request is over ${route.maxBytes} bytes`);

  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    if (res.headersSent) return;
    size += chunk.length;
    // Over the limit: answered at once; the connection closes once the answer is out.
    if (size > route.maxBytes) refuse(res, 413, `the request is over ${route.maxBytes} bytes`);
    else chunks.push(chunk);
  });
  req.on('error', () => {}); // a client that goes away: nothing to answer
  req.on('end', () => {
    if (res.headersSent) return;
    const body = parseBody(Buffer.concat(chunks).toString('utf8'));
    if (!body.ok) return refuse(res, 400, body.message);
    Promise.resolve()
      .then(() => route.handler(body.value))
      .then(
        (out) => answer(res, 200, out),
        (e: unknown) => refuse(res, 500, oneLine(e)),
      );
  });
}

function start(): Promise<Server> {
  const routes = new Map<string, Route>();
  const sockets = new Set<Socket>();
  const srv = http.createServer(
    {
      headersTimeout: LOOPBACK_LIMITS.headersTimeoutMs,
      requestTimeout: LOOPBACK_LIMITS.requestTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would triple them).
      connectionsCheckingInterval: 1000,
      keepAliveTimeout: 1000,
      maxHeaderSize: 16 << 10,
    },
    (req, res) => {
      // Nothing a client sends may throw out of here: it would end the kernel process.
      try {
        serve(routes, req, res);
      } catch (e) {
        refuse(res, 500, oneLine(e));
      }
    },
  );
  srv.maxConnections = LOOPBACK_LIMITS.maxConnections;
  srv.maxRequestsPerSocket = 1;
  srv.setTimeout(LOOPBACK_LIMITS.idleTimeoutMs, (socket: Socket) => socket.destroy());
  srv.on('connection', (socket: Socket) => {
    // An open connection never keeps the kernel process alive after its work is done.
    socket.unref();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  srv.on('clientError', (_e, socket: Socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      srv.unref(); // the kernel exits on shutdown as if this server were not there
      resolve({ srv, port: (srv.address() as { port: number }).port, routes, sockets });
    });
  });
}

/** Closes the process's loopback server and its connections (its routes stop); the next route starts a new one. */
export async function closeLoopback(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s) return;
  let open: Server;
  try {
    open = await s;
  } catch {
    return;
  }
  open.routes.clear();
  await new Promise<void>((resolve) => {
    open.srv.close(() => resolve());
    for (const socket of open.sockets) socket.destroy();
  });
}

// The kernel shuts down by letting its event loop run out (tslab closes its sockets); the server
// and its connections hold nothing open (unref), so 'beforeExit' comes, and the server goes with it.
let closeOnExit = false;
function closeWhenTheProcessEnds(): void {
  if (closeOnExit) return;
  closeOnExit = true;
  process.once('beforeExit', () => void closeLoopback());
}

/**
 * Adds a route to this process's loopback server (started on first use) and returns its URL and
 * one-time claim code. `name` is a path segment ([A-Za-z0-9_-]); each call gets a fresh path,
 * claim and token, so an old output's token stops at its own route. `maxBytes`: the largest body.
 */
export async function openLoopbackRoute(name: string, handler: LoopbackHandler, opts: { maxBytes?: number } = {}): Promise<LoopbackRoute> {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`openLoopbackRoute: the name "${name}" must be letters, digits, - or _`);
  const maxBytes = opts.maxBytes ?? LOOPBACK_LIMITS.maxBytes;
  if (!(Number.isInteger(maxBytes) && maxBytes > 0))
    throw new Error(`openLoopbackRoute: maxBytes must be a positive whole number, got ${maxBytes}`);
  closeWhenTheProcessEnds();
  server ??= start();
  let s: Server;
  try {
    s = await server;
  } catch (e) {
    server = undefined;
    throw e;
  }
  const claim = randomBytes(18).toString('base64url');
  const pathname = `/${name}/${randomBytes(6).toString('hex')}`;
  s.routes.set(pathname, { claim: Buffer.from(claim), handler, maxBytes });
  // Re-running a cell adds a route; the oldest go once there are maxRoutes (Map keeps insertion order).
  for (const old of s.routes.keys()) {
    if (s.routes.size <= LOOPBACK_LIMITS.maxRoutes) break;
    s.routes.delete(old);
  }
  return { url: `http://127.0.0.1:${s.port}${pathname}`, claim };
}

/** The header name a page sends the token in. */
export const LOOPBACK_TOKEN_HEADER = 'X-Diffusion-Token';
/** The header name a page sends its one-time claim code in (the answer is {status: 'ok', token}). */
export const LOOPBACK_CLAIM_HEADER = 'X-Diffusion-Claim';
