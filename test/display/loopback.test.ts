/**
 * The kernel's loopback HTTP route (lib/display/loopback.ts) against careless and hostile clients
 * (issue 32), over real sockets: the cap on open connections; idle, slow-header and slow-body
 * clients cut off by the server's timeouts (counted in the bytes a client dripped before the cut,
 * 2 a second: the limits are 10 s, the bounds below 30 s, and Node's defaults were 60–300 s);
 * refused requests answered and closed without their body being read; request targets that are
 * not URLs (which used to throw out of the request handler); the one-time claim of the
 * token; JSON nested too deep refused before it is parsed; and a process whose work is done
 * exiting at once while a client still holds a connection. The drawing route on top of it is tested in
 * drawing.test.ts.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { closeLoopback, jsonDepth, LOOPBACK_LIMITS, openLoopbackRoute } from '../../lib/display/loopback';

after(() => closeLoopback());

/** A route whose handler records what it got; its token claimed. */
async function route(): Promise<{ url: string; port: number; path: string; token: string; claim: string; got: unknown[] }> {
  const got: unknown[] = [];
  const r = await openLoopbackRoute('test', (body) => {
    got.push(body);
    return { status: 'ok' };
  });
  const u = new URL(r.url);
  const res = await fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Claim': r.claim } });
  const { token } = (await res.json()) as { token: string };
  return { url: r.url, port: Number(u.port), path: u.pathname, token, claim: r.claim, got };
}

/** A raw TCP client: what it received, and when the server closed it. */
function client(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void>; isClosed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const done = new Promise<void>((r) => socket.once('close', () => ((closed = true), r())));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, received: () => data, closed: done, isClosed: () => closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` one byte every 500 ms until the socket closes; resolves with the bytes written. */
function drip(socket: net.Socket, text: string): Promise<number> {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= text.length) {
        clearInterval(timer);
        if (i >= text.length) socket.destroy();
        return resolve(i);
      }
      socket.write(text[i++]!);
    }, 500);
    socket.once('close', () => {
      clearInterval(timer);
      resolve(i);
    });
  });
}

test(
  `the server holds at most ${LOOPBACK_LIMITS.maxConnections} connections: more are closed as they come`,
  { timeout: 150_000 },
  async () => {
    const r = await route();
    const extra = 4;
    const clients: Array<Awaited<ReturnType<typeof client>>> = [];
    for (let i = 0; i < LOOPBACK_LIMITS.maxConnections + extra; i++) clients.push(await client(r.port));
    // The extra ones are dropped at once; the others stay until the idle or header timeout.
    await new Promise<void>((resolve) => {
      const check = () => (clients.filter((c) => c.isClosed()).length >= extra ? resolve() : setTimeout(check, 20));
      check();
    });
    assert.equal(clients.filter((c) => !c.isClosed()).length, LOOPBACK_LIMITS.maxConnections, 'the first ones are still open');
    for (const c of clients) c.socket.destroy();
    await Promise.all(clients.map((c) => c.closed));
    // Room again once they are gone.
    const res = await fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Token': r.token }, body: '{"a":1}' });
    assert.equal(res.status, 200);
  },
);

test('idle, slow-header and slow-body clients are cut off by the server (limits of 10 s)', { timeout: 150_000 }, async () => {
  const r = await route();
  const idle = await client(r.port);
  const slowHeaders = await client(r.port);
  const slowBody = await client(r.port);
  const headers = `POST ${r.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Diffusion-Token: ${r.token}\r\nContent-Type: application/json\r\n`;
  slowBody.socket.write(`${headers}Content-Length: 200\r\n\r\n`);
  const [, headerBytes, bodyBytes] = await Promise.all([
    idle.closed.then(() => 0),
    drip(slowHeaders.socket, `POST ${r.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'x'.repeat(200)}\r\n\r\n`),
    drip(slowBody.socket, `{"png":"${'A'.repeat(190)}"}`),
  ]);
  assert.equal(idle.isClosed(), true);
  assert.ok(headerBytes < 60, `the slow-header client sent ${headerBytes} bytes (2 a second) before the server closed it`);
  assert.ok(bodyBytes < 60, `the slow-body client sent ${bodyBytes} bytes (2 a second) before the server closed it`);
  assert.equal(r.got.length, 0, 'no slow request reached the handler');
});

test('refused requests are answered and closed without reading their body', { timeout: 150_000 }, async () => {
  const r = await route();
  const cases: Array<[string, string, number]> = [
    ['POST', `X-Diffusion-Token: ${r.token.slice(0, -1)}x`, 403],
    ['POST', '', 403],
    ['POST', `X-Diffusion-Claim: ${r.claim}`, 409], // already claimed
    ['POST', 'X-Diffusion-Claim: nope', 403],
    ['PUT', `X-Diffusion-Token: ${r.token}`, 405],
  ];
  await Promise.all(
    cases.map(async ([method, header, status]) => {
      const c = await client(r.port);
      c.socket.write(`${method} ${r.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${header ? `${header}\r\n` : ''}Content-Length: 100000\r\n\r\n`);
      const sent = await drip(c.socket, 'x'.repeat(100));
      assert.match(c.received(), new RegExp(`^HTTP/1\\.1 ${status} `), `${method} ${header}`);
      assert.match(c.received(), /\r\nConnection: close\r\n/i);
      assert.ok(sent < 4, `${method} ${header}: the client dripped ${sent} body bytes before the server closed it`);
    }),
  );
  // A wrong path, with a body on its way: the same.
  const c = await client(r.port);
  c.socket.write(`POST /test/000000000000 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Diffusion-Token: ${r.token}\r\nContent-Length: 100000\r\n\r\n`);
  assert.ok((await drip(c.socket, 'x'.repeat(100))) < 4);
  assert.match(c.received(), /^HTTP\/1\.1 404 /);
  // A body declared over the route's limit: refused before it is sent.
  const big = await client(r.port);
  big.socket.write(
    `POST ${r.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Diffusion-Token: ${r.token}\r\nContent-Length: ${LOOPBACK_LIMITS.maxBytes + 1}\r\n\r\n`,
  );
  assert.ok((await drip(big.socket, 'x'.repeat(100))) < 4);
  assert.match(big.received(), /^HTTP\/1\.1 413 /);
  assert.equal(r.got.length, 0);
});

test('request targets that are not URLs are answered 400, and the server goes on', async () => {
  const r = await route();
  for (const target of ['http://[', '//[', 'http://a:99999/x']) {
    const c = await client(r.port);
    c.socket.write(`POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
    await c.closed;
    assert.match(c.received(), /^HTTP\/1\.1 400 /, target);
  }
  const res = await fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Token': r.token }, body: '{}' });
  assert.equal(res.status, 200, 'still serving');
});

test('the token is handed over once for the claim code in the output, and only the token works', async () => {
  const r = await openLoopbackRoute('test', () => ({ status: 'ok' }));
  const post = (headers: Record<string, string>) => fetch(r.url, { method: 'POST', headers, body: '{}' });
  assert.equal((await post({ 'X-Diffusion-Token': r.claim })).status, 403, 'the claim code is not a token');
  assert.equal((await post({ 'X-Diffusion-Token': '' })).status, 403, 'no token before the claim');
  const first = await fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Claim': r.claim } });
  const { token } = (await first.json()) as { token: string };
  assert.match(token, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(token, r.claim);
  const again = await fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Claim': r.claim } });
  assert.equal(again.status, 409);
  assert.match(((await again.json()) as { message: string }).message, /already connected to another page.*run its cell again/);
  assert.equal((await post({ 'X-Diffusion-Token': token })).status, 200);
});

test('a body nested too deep is refused before it is parsed; bodies within the limits reach the handler', async () => {
  assert.equal(jsonDepth('{"a":[1,{"b":"[[[["}],[]]}'), 3, 'brackets inside strings do not count');
  assert.equal(jsonDepth('"\\"[[["'), 0, 'nor after an escaped quote');
  const r = await route();
  const post = (body: string) => fetch(r.url, { method: 'POST', headers: { 'X-Diffusion-Token': r.token }, body });
  const deep = await post(`{"png":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
  assert.equal(deep.status, 400);
  assert.match(((await deep.json()) as { message: string }).message, new RegExp(`nests deeper than ${LOOPBACK_LIMITS.maxDepth} levels`));
  const ok = `${'['.repeat(LOOPBACK_LIMITS.maxDepth - 1)}{"png":"x"}${']'.repeat(LOOPBACK_LIMITS.maxDepth - 1)}`;
  assert.equal((await post(ok)).status, 200);
  assert.equal((await post('{png')).status, 400);
  assert.equal(r.got.length, 1);
});

test('a process whose work is done exits while a client still holds a connection to its server', { timeout: 150_000 }, async () => {
  const child = spawn(process.execPath, [path.join(__dirname, 'loopbackChild.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', () => reject(new Error(`the child ended early: ${err}`)));
  });
  const { url } = JSON.parse(first) as { url: string };
  // A connection with half a request, held open; then one full exchange, so the server has
  // accepted the first by now.
  const held = await client(Number(new URL(url).port));
  held.socket.write(`POST ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
  assert.equal((await fetch(url, { method: 'OPTIONS' })).status, 204);
  child.stdin.write('done\n');
  // The held connection goes on sending its headers, 2 bytes a second, until the child is gone:
  // kept alive by it, the child would last until the server's header timeout (Node's default: 60 s).
  const dripped = drip(held.socket, 'X-Slow: 1\r\n'.repeat(20));
  const code = await exited;
  held.socket.destroy();
  const sent = await dripped;
  assert.equal(code, 0, err);
  assert.match(out, /\nexit\n$/);
  assert.ok(sent < 16, `the client dripped ${sent} bytes (2 a second) before the child exited`);
});
