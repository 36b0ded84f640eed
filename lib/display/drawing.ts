/**
 * A drawing canvas for the Part A notebook (the course's hand-drawn images, SPEC §1.0c / §1.7.1).
 *
 * `showDrawingCanvas` displays an HTML canvas (white pen on black, like MNIST) with "Send to
 * kernel", "Clear" and "Download PNG". When the file already holds a drawing (an earlier session's),
 * the canvas starts with it and says so, so the canvas shows what the next cell will use. "Send"
 * encodes the drawing as a PNG and delivers `{file, png: "<base64 PNG>"}` to the kernel, which
 * calls receiveDrawing (the PNG decoded, at most the canvas's size, then written to a temporary
 * file renamed over the drawing) and answers {status: 'ok', file, bytes} or
 * {status: 'error', message}; the page shows "saved to …" or the one-line error. Two ways in:
 *  - a Jupyter comm to DRAWING_COMM_TARGET (patched tslab), where the page has a handle on the
 *    kernel (classic Notebook; JupyterLab / Notebook 7 started with --expose-app-in-browser);
 *  - otherwise the kernel's loopback HTTP endpoint (./loopback: 127.0.0.1, a token per canvas,
 *    handed to the page at first contact for the one-time code in the output), which any
 *    front-end on the kernel's machine reaches (JupyterLab, Notebook 7, VS Code).
 * Where neither works (a remote kernel), it says so and "Download PNG" remains.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { isNotebook, registerCommTarget, sendDisplay, type KernelComm } from './notebook';
import { BROWSER_COMM } from './comms';
import { LOOPBACK_CLAIM_HEADER, LOOPBACK_TOKEN_HEADER, openLoopbackRoute, type LoopbackRoute } from './loopback';
import { writeFileAtomic } from '../files';
import { projectPath, runsDir } from '../paths';
import { setting } from '../config';

/** Where the notebook's drawing goes by default: runs/partA/drawing.png at the project root, or PARTA_DRAWING. */
export function defaultDrawingFile(): string {
  const file = setting('PARTA_DRAWING');
  return file ? path.resolve(projectPath(), file) : runsDir('partA', 'drawing.png');
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The canvas's side in pixels unless told otherwise (10× MNIST). */
export const DEFAULT_CANVAS_SIZE = 280;

/** The side of the canvas shown for each file (the largest, if several), which bounds what it accepts. */
const canvasSides = new Map<string, number>();

/** The largest drawing accepted for `file`: its canvas's side, or the default canvas's. */
function maxSideFor(file: string): number {
  return canvasSides.get(path.resolve(file)) ?? DEFAULT_CANVAS_SIZE;
}

/**
 * Called by the canvas through the kernel: decodes the base64 data as a PNG of at most
 * `maxSide`×`maxSide` pixels (its canvas's size) and only then writes it to `file` (a temporary
 * file renamed over it, creating its folder), so that a bad upload never replaces the drawing.
 * Returns a one-line note; throws one line when the data is not such a PNG.
 */
export async function receiveDrawing(file: string, base64: string, maxSide: number = maxSideFor(file)): Promise<string> {
  const bytes = Buffer.from(base64, 'base64');
  const refuse = (why: string) => new Error(`receiveDrawing: the data for ${file} ${why}; send it from the canvas again`);
  if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, 8).equals(PNG_SIGNATURE))
    throw refuse(`is not a PNG (${bytes.length} bytes)`);
  let size: { width?: number; height?: number; format?: string };
  try {
    // The header first (no pixels decoded): the size before anything large is decoded.
    size = await sharp(bytes).metadata();
  } catch (e) {
    throw refuse(`is not a PNG it can read (${bytes.length} bytes: ${String((e as Error).message).split('\n')[0]})`);
  }
  if (size.format !== 'png' || !size.width || !size.height) throw refuse(`is not a PNG image (${bytes.length} bytes)`);
  if (size.width > maxSide || size.height > maxSide)
    throw refuse(`is a ${size.width}×${size.height} image, larger than the ${maxSide}×${maxSide} canvas`);
  try {
    // Every pixel, every chunk's checksum: a damaged or truncated PNG fails here (failOn warning).
    await sharp(bytes, { failOn: 'warning', limitInputPixels: maxSide * maxSide })
      .raw()
      .toBuffer();
  } catch (e) {
    throw refuse(`is not a PNG it can decode (${bytes.length} bytes: ${String((e as Error).message).split('\n')[0]})`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, bytes);
  return `drawing saved: ${file} (${bytes.length} bytes)`;
}

/** The comm target the canvas sends drawings to. */
export const DRAWING_COMM_TARGET = 'diffusion.drawing';

/** The kernel's answer to one drawing message. */
export type DrawingReply = { status: 'ok'; file: string; bytes: number } | { status: 'error'; message: string };

/** The first line of an error's message, bounded (never a stack trace). */
function oneLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.split(/\r?\n/)[0]!.trim() || 'unknown error';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/**
 * Handles one drawing message `{file?, png}` (png: base64; file defaults to `defaultFile`):
 * receiveDrawing writes it, and the reply says where and how many bytes, or why not in one line.
 * `maxSide`: the largest drawing accepted (default: the size of the canvas shown for the file).
 */
export async function handleDrawingMessage(
  data: unknown,
  defaultFile: string = defaultDrawingFile(),
  maxSide?: number,
): Promise<DrawingReply> {
  try {
    if (typeof data !== 'object' || data === null) return { status: 'error', message: 'the drawing message is not an object' };
    const { file, png } = data as { file?: unknown; png?: unknown };
    if (typeof png !== 'string' || png === '') return { status: 'error', message: 'the drawing message has no png (a base64 string)' };
    if (file !== undefined && file !== null && (typeof file !== 'string' || file === '')) {
      return { status: 'error', message: 'the drawing message has a file that is not a path' };
    }
    const target = typeof file === 'string' ? file : defaultFile;
    await receiveDrawing(target, png, maxSide);
    return { status: 'ok', file: target, bytes: Buffer.from(png, 'base64').length };
  } catch (e) {
    return { status: 'error', message: oneLine(e) };
  }
}

/** The comm target's handler: each message on the comm gets one reply on it. */
export function drawingCommHandler(comm: KernelComm): void {
  comm.onMsg = async (msg) => comm.send(await handleDrawingMessage(msg?.content?.data));
}

export interface CanvasOptions {
  /** Where receiveDrawing writes the PNG (default defaultDrawingFile()). */
  file?: string;
  /** Canvas size in pixels (default 280: 10× MNIST); drawings sent to the kernel may be no larger. */
  size?: number;
  /** Pen width in canvas pixels (default 22, about MNIST's stroke at 28 px). */
  pen?: number;
  /** DOM id prefix (default "partA-draw"). */
  id?: string;
}

/** A value as a JavaScript literal that is safe inside an HTML <script> (no "</script>"). */
function jsLiteral(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** How the canvas reaches the kernel, and what it starts with. */
export interface CanvasLinks {
  /** The kernel takes comms (patched tslab registered the target). */
  kernelComms: boolean;
  /** The kernel's loopback route for this canvas (its URL and one-time claim code), if it could open one. */
  endpoint?: LoopbackRoute;
  /** The drawing already at the file, as a data: URL (the canvas starts with it). */
  saved?: string;
}

/** The drawing at `file` as a data: URL, when it is a PNG of at most 4 MB; else undefined. */
export function savedDrawing(file: string): string | undefined {
  try {
    if (fs.statSync(file).size > 4 << 20) return undefined;
    const bytes = fs.readFileSync(file);
    return bytes.subarray(0, 8).equals(PNG_SIGNATURE) ? `data:image/png;base64,${bytes.toString('base64')}` : undefined;
  } catch {
    return undefined;
  }
}

/** The canvas's HTML and script (exported for tests). */
export function drawingCanvasHtml(opts: CanvasOptions = {}, links: CanvasLinks = { kernelComms: true }): string {
  const file = opts.file ?? defaultDrawingFile();
  const size = opts.size ?? DEFAULT_CANVAS_SIZE;
  const pen = opts.pen ?? 22;
  const id = (opts.id ?? 'partA-draw').replace(/[^A-Za-z0-9_-]/g, '_');
  const el = (suffix: string) => `document.getElementById(${jsLiteral(`${id}-${suffix}`)})`;
  return `<div id="${id}" style="font-family:sans-serif">
<canvas id="${id}-canvas" width="${size}" height="${size}" style="background:#000;border:1px solid #888;touch-action:none;cursor:crosshair"></canvas>
<div><button id="${id}-send">Send to kernel</button> <button id="${id}-clear">Clear</button>
<a id="${id}-download" download="drawing.png" href="#">Download PNG</a>
<span id="${id}-status" style="margin-left:1em;color:#555">draw a digit with the mouse, then send it</span></div>
<script>
(function () {
  ${BROWSER_COMM.replace(/\n/g, '\n  ')}
  var root = document.getElementById(${jsLiteral(id)});
  var c = ${el('canvas')};
  var ctx = c.getContext('2d');
  var status = ${el('status')};
  var download = ${el('download')};
  var file = ${jsLiteral(file)}, target = ${jsLiteral(DRAWING_COMM_TARGET)}, kernelComms = ${links.kernelComms ? 'true' : 'false'};
  var endpoint = ${jsLiteral(links.endpoint ?? null)}, tokenHeader = ${jsLiteral(LOOPBACK_TOKEN_HEADER)}, claimHeader = ${jsLiteral(LOOPBACK_CLAIM_HEADER)}, saved = ${jsLiteral(links.saved ?? null)};
  function say(state, text) { status.textContent = text; status.setAttribute('data-state', state); }
  function fallback(why) { download.href = c.toDataURL('image/png'); say('none', why + ': press Download PNG and save it as ' + file); }
  function clear() { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, c.width, c.height); }
  function report(d) {
    if (d && d.status === 'ok') say('ok', 'saved to ' + d.file + ' (' + d.bytes + ' bytes)');
    else say('error', 'kernel error: ' + ((d && d.message) || 'unexpected answer'));
  }
  clear();
  if (saved) {
    var img = new Image();
    img.onload = function () { ctx.drawImage(img, 0, 0, c.width, c.height); say('saved', 'showing the drawing saved at ' + file + ', which the next cell uses: draw over it, or Clear and draw a new one, then Send'); };
    img.src = saved;
  }
  ctx.strokeStyle = '#fff'; ctx.lineWidth = ${pen}; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  var down = false, last = null;
  function pos(e) { var r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; }
  c.addEventListener('pointerdown', function (e) { down = true; last = pos(e); ctx.beginPath(); ctx.arc(last[0], last[1], ${pen} / 2, 0, 2 * Math.PI); ctx.fillStyle = '#fff'; ctx.fill(); });
  c.addEventListener('pointermove', function (e) { if (!down) return; var p = pos(e); ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke(); last = p; });
  ['pointerup', 'pointerleave'].forEach(function (ev) { c.addEventListener(ev, function () { down = false; }); });
  ${el('clear')}.onclick = function () { clear(); say('cleared', 'cleared (the saved file changes only when you Send)'); };
  download.onclick = function () { this.href = c.toDataURL('image/png'); };
  // The loopback endpoint: the way in where the page has no kernel handle (JupyterLab, Notebook 7, VS Code).
  // The output holds only a one-time claim code, spent here as soon as the output shows: the
  // kernel answers the route's token once, and the page keeps it (this window, and this tab's
  // sessionStorage for a reload), so the notebook as saved holds no token that works.
  var token = null, claiming = null, tokenKey = endpoint ? 'diffusion-loopback ' + endpoint.url : '';
  var kept = window.__diffusionLoopback || (window.__diffusionLoopback = {});
  function remembered() { if (kept[tokenKey]) return kept[tokenKey]; try { return window.sessionStorage.getItem(tokenKey); } catch (e) { return null; } }
  function remember(t) { kept[tokenKey] = t; try { window.sessionStorage.setItem(tokenKey, t); } catch (e) {} }
  function claim() {
    token = token || remembered();
    if (token) return Promise.resolve(token);
    if (!claiming) {
      var h = {}; h[claimHeader] = endpoint.claim;
      claiming = fetch(endpoint.url, { method: 'POST', headers: h })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (d && d.status === 'ok' && typeof d.token === 'string') { token = d.token; remember(token); return token; }
          throw { kernel: (d && d.message) || 'unexpected answer' };
        }, function (e) { claiming = null; throw e; });
    }
    return claiming;
  }
  var kernelAt = endpoint ? endpoint.url.split('/').slice(0, 3).join('/') : '';
  if (endpoint && typeof fetch === 'function') claim().catch(function () {});
  function sendHttp(png) {
    if (!endpoint || typeof fetch !== 'function') { fallback('this page has no kernel connection and the kernel opened no endpoint'); return; }
    say('sending', 'sending to the kernel at ' + kernelAt + '...');
    claim()
      .then(function (t) {
        var headers = { 'Content-Type': 'application/json' }; headers[tokenHeader] = t;
        return fetch(endpoint.url, { method: 'POST', headers: headers, body: JSON.stringify({ png: png }) }).then(function (r) { return r.json(); });
      })
      .then(report, function (e) {
        if (e && e.kernel) say('error', 'kernel error: ' + e.kernel);
        else fallback('the kernel at ' + kernelAt + ' cannot be reached from this page (a remote kernel, or it restarted: run the canvas cell again)');
      });
  }
  ${el('send')}.onclick = function () {
    var png = c.toDataURL('image/png').split(',')[1];
    var done = false, timer = null, comm = null;
    function finish() { done = true; if (timer) clearTimeout(timer); if (comm) comm.close(); }
    if (kernelComms) comm = openComm(target, root, function (d) { finish(); report(d); }, function () {
      if (done) return;
      done = true; if (timer) clearTimeout(timer);
      say('closed', 'the kernel has no drawing target (restarted?): run the canvas cell again, or use Download PNG');
    });
    if (!comm) { sendHttp(png); return; }
    say('sending', 'sending...');
    timer = setTimeout(function () { if (!done) say('waiting', 'no answer from the kernel yet (busy running a cell?)'); }, 30000);
    comm({ file: file, png: png });
  };
})();
</script></div>`;
}

/**
 * Displays the canvas in the notebook (starting with the drawing already at the file, if any),
 * registers the kernel end of its comm (once per kernel) and opens its loopback route. Outside a
 * notebook it prints one line.
 */
export async function showDrawingCanvas(opts: CanvasOptions = {}): Promise<void> {
  const file = opts.file ?? defaultDrawingFile();
  if (!isNotebook()) {
    console.log(`[drawing canvas] (only in a notebook) drawings go to ${file}`);
    return;
  }
  const size = opts.size ?? DEFAULT_CANVAS_SIZE;
  if (!(Number.isInteger(size) && size >= 8 && size <= 4096))
    throw new Error(`showDrawingCanvas: size must be a whole number of pixels from 8 to 4096, got ${size}`);
  // What this file accepts: drawings up to the largest canvas shown for it.
  canvasSides.set(path.resolve(file), Math.max(size, canvasSides.get(path.resolve(file)) ?? 0));
  const comm = registerCommTarget(DRAWING_COMM_TARGET, drawingCommHandler);
  const kernelComms = comm === 'registered' || comm === 'already';
  let endpoint: LoopbackRoute | undefined;
  let why = '';
  try {
    // Over HTTP the file is this canvas's, whatever the page says. The body: {"png": base64 of a
    // PNG of at most size² RGBA pixels, stored (zlib never grows data by more than a little)}.
    const maxBytes = Math.ceil(((size * (size * 4 + 1) + 65_536) * 4) / 3) + 1024;
    endpoint = await openLoopbackRoute(
      'drawing',
      (body) => handleDrawingMessage({ png: (body as { png?: unknown } | null)?.png }, file, size),
      {
        maxBytes,
      },
    );
  } catch (e) {
    why = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  }
  const saved = savedDrawing(file);
  sendDisplay({
    'text/html': drawingCanvasHtml({ ...opts, file, size }, { kernelComms, endpoint, saved }),
    'text/plain': `[drawing canvas → ${file}]`,
  });
  if (!kernelComms && !endpoint)
    console.log(`[drawing canvas] this kernel takes no comms and opened no endpoint (${why}): use Download PNG and save it as ${file}`);
  if (saved)
    console.log(
      `[drawing canvas] starts with the drawing already at ${file} (${fs.statSync(file).mtime.toISOString().slice(0, 16).replace('T', ' ')})`,
    );
}
