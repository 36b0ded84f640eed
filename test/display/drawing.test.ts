/**
 * The kernel end of the drawing canvas's comm (lib/display/drawing.ts), without a front-end: a fake
 * comm object carries messages to the handler and collects its replies, and a stand-in for tslab's
 * kernel module (in require.cache, where lib/display/notebook.ts looks) records display messages
 * and comm-target registrations; the loopback route with real HTTP requests: the one-time claim
 * of its token, and drawings decoded before they replace the file (a real PNG, at most the
 * canvas's size). The browser end is tested in test/partA/canvas.test.ts, the server's bounds on
 * its clients in loopback.test.ts.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  DRAWING_COMM_TARGET,
  drawingCanvasHtml,
  drawingCommHandler,
  handleDrawingMessage,
  showDrawingCanvas,
  type DrawingReply,
} from '../../lib/display/drawing';
import { registerCommTarget, type KernelComm, type CommTargetHandler } from '../../lib/display/comms';

/** A real 28×28 PNG, one 300×300 (larger than the default canvas), a JPEG, and a PNG signature before junk. */
let PNG: Buffer;
let BIG_PNG: Buffer;
let JPEG: Buffer;
const FAKE_PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('rest of a png')]);
before(async () => {
  const img = (size: number) => sharp({ create: { width: size, height: size, channels: 3, background: { r: 0, g: 0, b: 0 } } });
  PNG = await img(28).png().toBuffer();
  BIG_PNG = await img(300).png().toBuffer();
  JPEG = await img(28).jpeg().toBuffer();
});

function fakeComm(): { comm: KernelComm; replies: unknown[]; deliver: (data: unknown) => Promise<void> } {
  const replies: unknown[] = [];
  const comm: KernelComm = {
    commId: 'c1',
    targetName: DRAWING_COMM_TARGET,
    send: (data) => replies.push(data),
    close: () => {},
    onMsg: null,
    onClose: null,
  };
  return { comm, replies, deliver: async (data) => void (await comm.onMsg!({ content: { data } })) };
}

/** Reply i as an error reply (a function, so that earlier deepEqual assertions do not narrow it). */
function errorAt(replies: unknown[], i: number): Extract<DrawingReply, { status: 'error' }> {
  return replies.at(i) as Extract<DrawingReply, { status: 'error' }>;
}

/** Runs fn with a stand-in tslab kernel module installed (with or without comm support). */
async function withFakeKernel(
  comms: boolean,
  fn: (k: { displays: Record<string, string>[]; targets: [string, CommTargetHandler | null][] }) => void | Promise<void>,
): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'drawing-kernel-'));
  const fakePath = path.join(tmp, 'node_modules', 'tslab', 'dist', 'jupyter.js');
  const displays: Record<string, string>[] = [];
  const targets: [string, CommTargetHandler | null][] = [];
  const fake: Record<string, unknown> = {
    lastWriteDisplayData: (content: { data: Record<string, string> }) => displays.push(content.data),
  };
  if (comms) fake.registerCommTarget = (name: string, handler: CommTargetHandler | null) => targets.push([name, handler]);
  require.cache[fakePath] = { exports: fake, id: fakePath, filename: fakePath, loaded: true } as unknown as NodeJS.Module;
  try {
    await fn({ displays, targets });
  } finally {
    delete require.cache[fakePath];
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

test('a drawing message on the comm is written by receiveDrawing and answered ok; bad ones get one-line errors, the file as it was', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drawing-comm-'));
  try {
    const file = path.join(dir, 'sub', 'd.png');
    const { comm, replies, deliver } = fakeComm();
    drawingCommHandler(comm);
    await deliver({ file, png: PNG.toString('base64') });
    assert.deepEqual(replies, [{ status: 'ok', file, bytes: PNG.length }]);
    assert.deepEqual(fs.readFileSync(file), PNG);

    // not a PNG: an error reply, the file left as it was
    await deliver({ file, png: Buffer.from('hello').toString('base64') });
    const bad = errorAt(replies, 1);
    assert.equal(bad.status, 'error');
    assert.match(bad.message, /not a PNG \(5 bytes\)/);
    assert.deepEqual(fs.readFileSync(file), PNG);

    // A PNG signature before junk, a truncated PNG, a JPEG, an image larger than the canvas:
    // decoded (or read) and refused before anything is written.
    const refused: Array<[Buffer, RegExp]> = [
      [FAKE_PNG, /is not a PNG it can read \(21 bytes: /],
      [PNG.subarray(0, PNG.length - 20), /is not a PNG it can (read|decode) /],
      [JPEG, /is not a PNG \(\d+ bytes\)/],
      [BIG_PNG, /is a 300×300 image, larger than the 280×280 canvas/],
    ];
    for (const [bytes, message] of refused) {
      await deliver({ file, png: bytes.toString('base64') });
      const r = errorAt(replies, -1);
      assert.equal(r.status, 'error');
      assert.match(r.message, message);
      assert.doesNotMatch(r.message, /\n/);
      assert.deepEqual(fs.readFileSync(file), PNG, 'the drawing as it was');
    }
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    // malformed messages and a file that cannot be written: one line each, never a stack
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'x');
    for (const data of [
      undefined,
      'png',
      {},
      { png: 42 },
      { png: '' },
      { file: 7, png: PNG.toString('base64') },
      { file: path.join(blocker, 'd.png'), png: PNG.toString('base64') },
    ]) {
      await deliver(data);
      const r = errorAt(replies, -1);
      assert.equal(r.status, 'error', JSON.stringify(data));
      assert.ok(r.message.length > 0 && !/\n|\s+at\s.+:\d+:\d+/.test(r.message), r.message);
    }
    assert.equal(replies.length, 13);

    // no file in the message: the default one
    const def = path.join(dir, 'default.png');
    assert.deepEqual(await handleDrawingMessage({ png: PNG.toString('base64') }, def), { status: 'ok', file: def, bytes: PNG.length });
    assert.deepEqual(fs.readFileSync(def), PNG);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('showDrawingCanvas registers the comm target once per kernel and shows the canvas each time', async (t) => {
  const log = t.mock.method(console, 'log', () => {});
  await withFakeKernel(true, async ({ displays, targets }) => {
    await showDrawingCanvas({ file: '/tmp/x.png', id: 'a' });
    await showDrawingCanvas({ file: '/tmp/x.png', id: 'b' });
    assert.deepEqual(
      targets.map(([name]) => name),
      [DRAWING_COMM_TARGET],
    );
    assert.equal(
      registerCommTarget(DRAWING_COMM_TARGET, () => {}),
      'already',
    );
    assert.equal(targets.length, 1);
    assert.equal(displays.length, 2);
    assert.match(displays[1]!['text/html']!, /kernelComms = true/);
    assert.match(displays[1]!['text/html']!, /<canvas id="b-canvas"/);
    assert.equal(log.mock.callCount(), 0);
    // the registered handler is the drawing one
    const { comm, replies, deliver } = fakeComm();
    await targets[0]![1]!(comm, {});
    await deliver({ png: Buffer.from('nope').toString('base64'), file: '/tmp/never.png' });
    assert.equal((replies[0] as DrawingReply).status, 'error');
  });
  // a fresh kernel registers again
  await withFakeKernel(true, async ({ targets }) => {
    await showDrawingCanvas({ file: '/tmp/x.png' });
    assert.equal(targets.length, 1);
  });
});

test('without comm support the canvas still reaches the kernel over its loopback route; outside a notebook one line', async (t) => {
  const log = t.mock.method(console, 'log', () => {});
  await withFakeKernel(false, async ({ displays }) => {
    assert.equal(
      registerCommTarget(DRAWING_COMM_TARGET, () => {}),
      'unsupported',
    );
    await showDrawingCanvas({ file: '/tmp/x.png' });
    assert.equal(displays.length, 1);
    assert.match(displays[0]!['text/html']!, /kernelComms = false/);
    assert.match(
      displays[0]!['text/html']!,
      /var endpoint = \{"url":"http:\/\/127\.0\.0\.1:\d+\/drawing\/[0-9a-f]{12}","claim":"[A-Za-z0-9_-]{24}"\}/,
    );
    assert.equal(log.mock.callCount(), 0);
  });
  assert.equal(
    registerCommTarget(DRAWING_COMM_TARGET, () => {}),
    'no-kernel',
  );
  await showDrawingCanvas({ file: '/tmp/x.png' });
  assert.equal(log.mock.callCount(), 1);
  assert.match(String(log.mock.calls[0]!.arguments[0]), /only in a notebook/);
});

/** The canvas's loopback route as its HTML names it, and its token claimed as the page does. */
async function endpointOf(html: string): Promise<{ url: string; claim: string; token: string }> {
  const m = /var endpoint = (\{[^}]*\})/.exec(html);
  assert.ok(m, 'the canvas names its endpoint');
  const { url, claim } = JSON.parse(m[1]!) as { url: string; claim: string };
  assert.doesNotMatch(html, /token"?\s*:/, 'no token in the output: only the one-time claim code');
  const res = await fetch(url, { method: 'POST', headers: { 'X-Diffusion-Claim': claim } });
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  return { url, claim, token };
}

test("the loopback route writes the canvas's own file with the right token, and refuses everything else", async (t) => {
  t.mock.method(console, 'log', () => {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drawing-http-'));
  try {
    const file = path.join(dir, 'd.png');
    const other = path.join(dir, 'elsewhere.png');
    await withFakeKernel(true, async ({ displays }) => {
      await showDrawingCanvas({ file });
      const { url, token } = await endpointOf(displays[0]!['text/html']!);
      const post = (body: string, headers: Record<string, string>) =>
        fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
      const png = JSON.stringify({ png: PNG.toString('base64'), file: other });

      // CORS preflight (any origin; Chromium's private-network header)
      const pre = await fetch(url, { method: 'OPTIONS' });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), '*');
      assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-diffusion-token/);
      assert.equal(pre.headers.get('access-control-allow-private-network'), 'true');

      // no token, a wrong one, another route: refused, nothing written
      for (const [headers, status] of [
        [{}, 403],
        [{ 'X-Diffusion-Token': `${token.slice(0, -1)}x` }, 403],
        [{ 'X-Diffusion-Token': `${token}x` }, 403],
      ] as const) {
        const r = await post(png, headers);
        assert.equal(r.status, status);
        assert.match(((await r.json()) as { message: string }).message, /token/);
      }
      const stray = await fetch(url.replace(/[0-9a-f]{12}$/, '000000000000'), {
        method: 'POST',
        headers: { 'X-Diffusion-Token': token },
        body: png,
      });
      assert.equal(stray.status, 404);
      assert.equal(fs.existsSync(file) || fs.existsSync(other), false);

      // the right token: the canvas's file (the body's file is ignored), the comm's answer
      const ok = await post(png, { 'X-Diffusion-Token': token });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { status: 'ok', file, bytes: PNG.length });
      assert.deepEqual(fs.readFileSync(file), PNG);
      assert.equal(fs.existsSync(other), false);

      // not JSON, not a PNG, a signature before junk, larger than the canvas, too many bytes:
      // one-line errors, the file as it was
      const notJson = await post('{png', { 'X-Diffusion-Token': token });
      assert.equal(notJson.status, 400);
      const message = async (png: Buffer) =>
        (
          (await (await post(JSON.stringify({ png: png.toString('base64') }), { 'X-Diffusion-Token': token })).json()) as {
            message: string;
          }
        ).message;
      assert.match(await message(Buffer.from('hello')), /not a PNG \(5 bytes\)/);
      assert.match(await message(FAKE_PNG), /is not a PNG it can read/);
      assert.match(await message(BIG_PNG), /is a 300×300 image, larger than the 280×280 canvas/);
      const big = await post(JSON.stringify({ png: 'A'.repeat(2 << 20) }), { 'X-Diffusion-Token': token }).catch((e: Error) => e);
      if (!(big instanceof Error)) assert.equal(big.status, 413);
      assert.deepEqual(fs.readFileSync(file), PNG);

      // a second canvas gets its own route and token
      await showDrawingCanvas({ file });
      const second = await endpointOf(displays[1]!['text/html']!);
      assert.notEqual(second.url, url);
      assert.notEqual(second.token, token);
      assert.equal(await post(png, { 'X-Diffusion-Token': token }).then((r) => r.status), 200, 'the first route still works');
      assert.equal(
        await fetch(second.url, { method: 'POST', headers: { 'X-Diffusion-Token': token }, body: png }).then((r) => r.status),
        403,
      );

      // a larger canvas takes a larger drawing (its own size is the bound)
      const bigFile = path.join(dir, 'big.png');
      await showDrawingCanvas({ file: bigFile, size: 320 });
      const third = await endpointOf(displays[2]!['text/html']!);
      const okBig = await fetch(third.url, {
        method: 'POST',
        headers: { 'X-Diffusion-Token': third.token },
        body: JSON.stringify({ png: BIG_PNG.toString('base64') }),
      });
      assert.deepEqual(await okBig.json(), { status: 'ok', file: bigFile, bytes: BIG_PNG.length });
      assert.deepEqual(fs.readFileSync(bigFile), BIG_PNG);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a canvas whose file already holds a drawing starts with it and says so', async (t) => {
  const log = t.mock.method(console, 'log', () => {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drawing-saved-'));
  try {
    const file = path.join(dir, 'd.png');
    await withFakeKernel(true, async ({ displays }) => {
      await showDrawingCanvas({ file });
      assert.match(displays[0]!['text/html']!, /saved = null/);
      fs.writeFileSync(file, PNG);
      await showDrawingCanvas({ file });
      assert.ok(displays[1]!['text/html']!.includes(`saved = "data:image/png;base64,${PNG.toString('base64')}"`));
      assert.match(String(log.mock.calls.at(-1)!.arguments[0]), /starts with the drawing already at .*d\.png/);
      fs.writeFileSync(file, 'not a png');
      await showDrawingCanvas({ file });
      assert.match(displays[2]!['text/html']!, /saved = null/);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the canvas's script parses and keeps paths out of the markup", () => {
  const html = drawingCanvasHtml({ file: '/tmp/</script><b>.png', id: 'x y' });
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 1, 'one script, not cut short by the path');
  assert.doesNotThrow(() => new Function(scripts[0]!));
  assert.match(html, /<canvas id="x_y-canvas"/);
  assert.match(scripts[0]!, /function openComm\(target, root, onMsg, onClose\)/);
  assert.match(scripts[0]!, /"diffusion\.drawing"/);
});
