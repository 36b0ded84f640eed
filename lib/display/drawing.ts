/**
 * A drawing canvas for the Part A notebook (the course's hand-drawn images, SPEC §1.0c / §1.7.1).
 *
 * `showDrawingCanvas` displays an HTML canvas (white pen on black, like MNIST) with "Send to
 * kernel" and "Clear" buttons. "Send" encodes the drawing as a PNG and runs, in the notebook's own
 * kernel (the classic notebook's Jupyter.notebook.kernel.execute),
 *     receiveDrawing("<file>", "<base64 PNG>")
 * which writes the file atomically; the next cell loads it with loadModelImage like any image.
 * The page shows "saved" once the kernel replied ok. (JupyterLab has no such global; there the
 * canvas offers "Download PNG" instead, to be put at the same path by hand.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sendDisplay } from './notebook';
import { writeFileAtomic } from '../image/io';
import { runsDir } from '../paths';

/** Where the notebook's drawing goes by default: runs/partA/drawing.png at the project root. */
export function defaultDrawingFile(): string {
  return runsDir('partA', 'drawing.png');
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Called by the canvas through the kernel: writes the base64 PNG to `file` (atomically, creating
 * its folder). Returns a one-line note; throws one line when the data is not a PNG.
 */
export function receiveDrawing(file: string, base64: string): string {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new Error(`receiveDrawing: the data for ${file} is not a PNG (${bytes.length} bytes); send it from the canvas again`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, bytes);
  return `drawing saved: ${file} (${bytes.length} bytes)`;
}

export interface CanvasOptions {
  /** Where receiveDrawing writes the PNG (default defaultDrawingFile()). */
  file?: string;
  /** Canvas size in CSS pixels (default 280: 10× MNIST). */
  size?: number;
  /** Pen width in canvas pixels (default 22, about MNIST's stroke at 28 px). */
  pen?: number;
  /** DOM id prefix (default "partA-draw"). */
  id?: string;
}

/** The canvas's HTML and script (exported for tests). */
export function drawingCanvasHtml(opts: CanvasOptions = {}): string {
  const file = opts.file ?? defaultDrawingFile();
  const size = opts.size ?? 280;
  const pen = opts.pen ?? 22;
  const id = (opts.id ?? 'partA-draw').replace(/[^A-Za-z0-9_-]/g, '_');
  return `<div id="${id}" style="font-family:sans-serif">
<canvas id="${id}-canvas" width="${size}" height="${size}" style="background:#000;border:1px solid #888;touch-action:none;cursor:crosshair"></canvas>
<div><button id="${id}-send">Send to kernel</button> <button id="${id}-clear">Clear</button>
<a id="${id}-download" download="drawing.png" href="#">Download PNG</a>
<span id="${id}-status" style="margin-left:1em;color:#555">draw a digit with the mouse, then send it</span></div>
<script>
(function () {
  var c = document.getElementById(${JSON.stringify(`${id}-canvas`)});
  var ctx = c.getContext('2d');
  var status = document.getElementById(${JSON.stringify(`${id}-status`)});
  function clear() { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, c.width, c.height); }
  clear();
  ctx.strokeStyle = '#fff'; ctx.lineWidth = ${pen}; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  var down = false, last = null;
  function pos(e) { var r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; }
  c.addEventListener('pointerdown', function (e) { down = true; last = pos(e); ctx.beginPath(); ctx.arc(last[0], last[1], ${pen} / 2, 0, 2 * Math.PI); ctx.fillStyle = '#fff'; ctx.fill(); });
  c.addEventListener('pointermove', function (e) { if (!down) return; var p = pos(e); ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke(); last = p; });
  ['pointerup', 'pointerleave'].forEach(function (ev) { c.addEventListener(ev, function () { down = false; }); });
  document.getElementById(${JSON.stringify(`${id}-clear`)}).onclick = function () { clear(); status.textContent = 'cleared'; };
  document.getElementById(${JSON.stringify(`${id}-download`)}).onclick = function () { this.href = c.toDataURL('image/png'); };
  document.getElementById(${JSON.stringify(`${id}-send`)}).onclick = function () {
    var b64 = c.toDataURL('image/png').split(',')[1];
    var J = window.Jupyter;
    if (!J || !J.notebook || !J.notebook.kernel) { status.textContent = 'no classic-notebook kernel here: use Download PNG and save it as ' + ${JSON.stringify(file)}; return; }
    status.textContent = 'sending...';
    J.notebook.kernel.execute('receiveDrawing(' + JSON.stringify(${JSON.stringify(file)}) + ', "' + b64 + '")', {
      shell: { reply: function (msg) { status.textContent = msg.content.status === 'ok' ? 'saved to ' + ${JSON.stringify(file)} : 'kernel error: ' + (msg.content.evalue || msg.content.status); status.setAttribute('data-state', msg.content.status); } }
    }, { silent: false, store_history: false });
  };
})();
</script></div>`;
}

/** Displays the canvas in the notebook (a no-op line outside one). `receiveDrawing` must be in the kernel's scope. */
export function showDrawingCanvas(opts: CanvasOptions = {}): void {
  const file = opts.file ?? defaultDrawingFile();
  const shown = sendDisplay({ 'text/html': drawingCanvasHtml({ ...opts, file }), 'text/plain': `[drawing canvas → ${file}]` });
  if (!shown) console.log(`[drawing canvas] (only in a notebook) drawings go to ${file}`);
}
