/**
 * The illusions of Part A shown the way the course's own pages show them:
 *
 *   showAnagrams(items, meta)  visual anagrams (§1.8): each tile turns to its view (upside down
 *                              along H, as flipVertical, unless meta.view names another of
 *                              lib/image/views.ts: rotated, transposed, negated) when the reader
 *                              hovers it or taps/clicks it, and its caption turns from the upright
 *                              prompt to the viewed one;
 *   showHybrids(items, meta)   hybrid images (§1.9): each tile has a size slider (and near/far
 *                              buttons) that shrinks the displayed image from full size down to
 *                              16 px, smoothly resampled, as if seen from afar;
 *   gifTileHtml(...)           (the report's GIFs) a still poster that plays on hover or tap.
 *
 * Each show* call displays, in a notebook, the static grid (as showImages does) and then the
 * interactive tiles as one HTML output (images inline as data: URLs, CSS and script inline; the
 * script finds its tiles from its own <script> element, so it works wherever output scripts run:
 * the classic notebook, trusted JupyterLab, nbconvert's HTML). Under `npm run figures` it registers
 * a figure of kind 'anagram' or 'hybrid': the grid as <id>.png plus one native-size PNG per tile
 * and the prompts, from which lib/report builds the same tiles (ILLUSION_CSS, ILLUSION_SCRIPT and
 * the *TileHtml builders below are shared by both).
 *
 * Interaction: a mouse hover shows the other view while the pointer is over the tile; a click,
 * tap, Enter or Space swaps which view is shown at rest. So every hover and every tap flips the
 * tile, and touch screens (no hover) get a plain toggle.
 *
 * The show* functions never dispose the tensors they are given (the caller owns them); every
 * tensor they make (the flipped views) is released before they return.
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeGrid, type GridOptions } from './grid';
import { isNotebook, sendDisplay, escapeXml, showCaption, terminalNote } from './notebook';
import { registerFigure, checkFigureId, type FigureMeta, type TileFiles, type AnagramTile, type HybridTile } from './registry';
import { tensorToPng } from '../image/io';
import { VIEWS, type View, type ViewName } from '../image/views';

/** One visual anagram: the image as generated (upright), and the prompt each orientation shows. */
export interface AnagramItem {
  /** [1,H,W,C] in the pixel range of meta.range ('[0,1]' by default). Not disposed. */
  upright: tf.Tensor4D;
  uprightPrompt: string;
  flippedPrompt: string;
}

/** One hybrid image: what it shows from afar (low frequencies) and up close (high frequencies). */
export interface HybridItem {
  /** [1,H,W,C] in the pixel range of meta.range ('[0,1]' by default). Not disposed. */
  image: tf.Tensor4D;
  farPrompt: string;
  nearPrompt: string;
  /** Optional low-passed image [1,H,W,C] for the static grid (far | near per row). Not disposed. */
  far?: tf.Tensor4D;
}

/** Smallest width (CSS px) the hybrid slider goes down to. */
export const HYBRID_MIN_WIDTH = 16;

/** Display size of a tile: small images upscaled by an integer factor to at least `target` px. */
export function tileDisplaySize(width: number, height: number, target: number): { width: number; height: number; scale: number } {
  const m = Math.max(width, height);
  const scale = m >= target ? 1 : Math.ceil(target / m);
  return { width: width * scale, height: height * scale, scale };
}

/** The tiles' style (prefixed dn-; shared by the notebook widget and the report). */
export const ILLUSION_CSS = `.dn-tiles { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; margin: .4em 0; }
.dn-tile { margin: 0; display: flex; flex-direction: column; align-items: center; max-width: 100%; font-family: 'DejaVu Sans', Arial, sans-serif; }
.dn-tile .dn-cap { margin-top: .3em; font-size: .85em; text-align: center; max-width: 300px; min-height: 2.4em; }
.dn-toggle { cursor: pointer; user-select: none; -webkit-user-select: none; -webkit-tap-highlight-color: transparent; }
.dn-toggle:focus-visible { outline: 2px solid #4a7bd0; outline-offset: 2px; }
.dn-tile img { display: block; max-width: 100%; }
.dn-tile img.dn-px { image-rendering: pixelated; }
.dn-anagram img { transition: transform .6s ease; }
.dn-anagram.dn-on img { transform: scaleY(-1); }
.dn-anagram.dn-rot180.dn-on img { transform: rotate(180deg); }
.dn-anagram.dn-rot90.dn-on img { transform: rotate(-90deg); }
.dn-anagram.dn-transpose.dn-on img { transform: scaleX(-1) rotate(90deg); }
.dn-anagram.dn-negate img { transition: filter .6s ease; }
.dn-anagram.dn-negate.dn-on img { transform: none; filter: invert(1); }
.dn-zoom .dn-view { display: flex; align-items: center; justify-content: center; max-width: 100%; }
.dn-zoom .dn-view img { height: auto; image-rendering: auto; }
.dn-zoom .dn-controls { font-size: .8em; color: #555; display: flex; align-items: center; gap: .4em; margin-top: .3em; }
.dn-zoom .dn-controls input { width: 140px; }
.dn-zoom .dn-controls button { font-size: 1em; padding: 0 .4em; }
@media (prefers-reduced-motion: reduce) { .dn-anagram img { transition: none; } }`;

/**
 * The tiles' behaviour, plain ES5 run once per output (or once at the end of the report): sets up
 * every tile under the script's parent element not set up yet.
 *   .dn-toggle: class dn-on = (clicked an odd number of times) XOR (mouse over it); the caption
 *     .dn-cap shows data-on / data-off; an <img> with data-on-src / data-off-src swaps its src.
 *   .dn-zoom: the range input sets the image's CSS width (pixelated above the image's natural
 *     width, smooth below); class dn-on and the caption's data-on once at a third of full size.
 */
export const ILLUSION_SCRIPT = `(function () {
  // Our own output; where a front end ran this script elsewhere (jQuery evaluates it in <head>), the page.
  var here = document.currentScript && document.currentScript.parentNode;
  var root = here && here.querySelector && here.querySelector('.dn-toggle, .dn-zoom') ? here : document;
  function caption(el, on) {
    var c = el.querySelector('.dn-cap');
    if (c) c.textContent = c.getAttribute(on ? 'data-on' : 'data-off');
  }
  function toggle(el) {
    var rest = false, hover = false, img = el.querySelector('img');
    function apply() {
      var on = rest !== hover;
      el.classList.toggle('dn-on', on);
      el.setAttribute('aria-pressed', on ? 'true' : 'false');
      caption(el, on);
      var src = img && img.getAttribute(on ? 'data-on-src' : 'data-off-src');
      if (src && img.getAttribute('src') !== src) img.setAttribute('src', src);
    }
    el.addEventListener('pointerenter', function (e) { if (e.pointerType === 'mouse') { hover = true; apply(); } });
    el.addEventListener('pointerleave', function () { if (hover) { hover = false; apply(); } });
    el.addEventListener('click', function () { rest = !rest; apply(); });
    el.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); rest = !rest; apply(); }
    });
  }
  function zoom(el) {
    var img = el.querySelector('img'), range = el.querySelector('input[type=range]'), size = el.querySelector('.dn-size');
    var natural = Number(el.getAttribute('data-natural')) || 1, full = Number(range.max), min = Number(range.min);
    function apply() {
      var w = Number(range.value);
      img.style.width = w + 'px';
      img.style.imageRendering = w > natural ? 'pixelated' : 'auto';
      var far = w <= full / 3;
      el.classList.toggle('dn-on', far);
      caption(el, far);
      if (size) size.textContent = w + ' px';
    }
    range.addEventListener('input', apply);
    var buttons = el.querySelectorAll('button[data-to]');
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].addEventListener('click', function (e) {
        range.value = String(e.currentTarget.getAttribute('data-to') === 'far' ? min : full);
        apply();
      });
    }
    apply();
  }
  function setup(within) {
    var els = within.querySelectorAll('.dn-toggle, .dn-zoom'), n = 0;
    for (var i = 0; i < els.length; i++) {
      if (els[i].getAttribute('data-dn-ready')) continue;
      els[i].setAttribute('data-dn-ready', '1');
      if (els[i].classList.contains('dn-zoom')) zoom(els[i]); else toggle(els[i]);
      n++;
    }
    return n;
  }
  // Nothing new yet: the output may be attached to the page just after its script ran.
  if (!setup(root)) setTimeout(function () { setup(document); }, 0);
})();`;

const attr = escapeXml;

/** An anagram tile: src is the upright image (a file path or data: URL) at its natural size. */
export function anagramTileHtml(t: {
  src: string;
  width: number;
  height: number;
  uprightPrompt: string;
  flippedPrompt: string;
  view?: ViewName;
}): string {
  const d = tileDisplaySize(t.width, t.height, 192);
  const view = VIEWS[t.view ?? 'flip'];
  const off = `↑ upright: ${t.uprightPrompt}`;
  const on = `${ANAGRAM_LABEL[view.name]}: ${t.flippedPrompt}`;
  const cls = view.name === 'flip' ? '' : ` dn-${view.name}`;
  return (
    `<figure class="dn-tile dn-toggle dn-anagram${cls}" tabindex="0" role="button" aria-pressed="false" title="hover, click or tap to turn it">` +
    `<img src="${attr(t.src)}" alt="${attr(`visual anagram: ${t.uprightPrompt} / ${view.description}: ${t.flippedPrompt}`)}" width="${d.width}" height="${d.height}"${d.scale > 1 ? ' class="dn-px"' : ''}/>` +
    `<figcaption class="dn-cap" data-off="${attr(off)}" data-on="${attr(on)}">${escapeXml(off)}</figcaption></figure>`
  );
}

/** A hybrid tile: src is the hybrid (a file path or data: URL) at its natural size, shown at ≥ 256 px with a size slider. */
export function hybridTileHtml(t: { src: string; width: number; height: number; farPrompt: string; nearPrompt: string }): string {
  const d = tileDisplaySize(t.width, t.height, 256);
  const off = `up close: ${t.nearPrompt}`;
  const on = `from afar: ${t.farPrompt}`;
  return (
    `<figure class="dn-tile dn-zoom dn-hybrid" data-natural="${t.width}">` +
    `<div class="dn-view" style="width:${d.width}px;height:${d.height}px">` +
    `<img src="${attr(t.src)}" alt="${attr(`hybrid image: ${t.nearPrompt} up close, ${t.farPrompt} from afar`)}" width="${d.width}" height="${d.height}" style="width:${d.width}px"${d.scale > 1 ? ' class="dn-px"' : ''}/></div>` +
    `<div class="dn-controls"><button type="button" data-to="near">near</button>` +
    `<input type="range" min="${Math.min(HYBRID_MIN_WIDTH, d.width)}" max="${d.width}" step="1" value="${d.width}" aria-label="displayed width in pixels (smaller = seen from farther away)"/>` +
    `<button type="button" data-to="far">far</button><output class="dn-size">${d.width} px</output></div>` +
    `<figcaption class="dn-cap" data-off="${attr(off)}" data-on="${attr(on)}">${escapeXml(off)}</figcaption></figure>`
  );
}

/** A GIF tile: the poster (first frame) until hovered or tapped, then the animation. */
export function gifTileHtml(t: { poster: string; gif: string; width?: number; height?: number; alt: string }): string {
  const size = t.width && t.height ? ` width="${t.width}" height="${t.height}"` : '';
  return (
    `<figure class="dn-tile dn-toggle dn-gif" tabindex="0" role="button" aria-pressed="false" title="hover, click or tap to play">` +
    `<img src="${attr(t.poster)}" data-off-src="${attr(t.poster)}" data-on-src="${attr(t.gif)}" alt="${attr(t.alt)}"${size}/>` +
    `<figcaption class="dn-cap" data-off="▶ hover or tap to play" data-on="■ playing (move away or tap to stop)">▶ hover or tap to play</figcaption></figure>`
  );
}

/** Tiles in a wrapping row, with the style and the script: one self-contained HTML output. */
export function illusionWidgetHtml(tiles: string[]): string {
  return `<div class="dn-illusions"><style>${ILLUSION_CSS}</style><div class="dn-tiles">${tiles.join('')}</div><script>${ILLUSION_SCRIPT}</script></div>`;
}

const dataUrl = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;

function checkItems(fn: string, tensors: Array<[string, tf.Tensor | undefined]>, n: number): void {
  if (n === 0) throw new Error(`${fn}: no items; pass at least one.`);
  for (const [name, t] of tensors) {
    if (!t || t.rank !== 4 || t.shape[0] !== 1) {
      throw new Error(`${fn}: ${name} must be one image [1,H,W,C], got shape [${t?.shape?.join(',')}]; slice a batch with t.slice(i, 1).`);
    }
    if (t.isDisposed) throw new Error(`${fn}: ${name} is already disposed.`);
  }
}

/** Shows the grid, then the tiles, in a notebook; prints one line elsewhere. */
function display(kind: string, meta: FigureMeta, grid: Buffer, tiles: string[], hint: string, saved?: string): void {
  if (isNotebook()) {
    sendDisplay({ 'image/png': grid.toString('base64'), 'text/plain': `[figure ${meta.id}] ${meta.title}` });
    sendDisplay({ 'text/html': illusionWidgetHtml(tiles), 'text/plain': `[${kind} ${meta.id}] ${hint}` });
    showCaption(meta.caption);
  } else {
    terminalNote(kind, meta, `${tiles.length} tile${tiles.length === 1 ? '' : 's'}`, saved);
  }
}

/** The caption of an anagram's second reading, by view. */
const ANAGRAM_LABEL: Record<ViewName, string> = {
  flip: '↓ flipped',
  rot180: '↻ rotated 180°',
  rot90: '↺ rotated 90°',
  transpose: '⤡ transposed',
  negate: '◐ negated',
};

/**
 * Shows visual anagrams: the static grid (upright | flipped upside down, one row per anagram, as
 * showImages with cols 2 and "upright: …" / "flipped: …" captions unless meta says otherwise) and
 * tiles that flip on hover or tap. Registers a figure of kind 'anagram' (grid + one upright PNG per
 * anagram + prompts). Does not dispose the inputs; releases the flipped views it makes.
 */
export async function showAnagrams(items: AnagramItem[], meta: FigureMeta & GridOptions & { view?: View }): Promise<void> {
  const view = meta.view ?? VIEWS.flip;
  const viewName = view.name as ViewName;
  if (!Object.hasOwn(VIEWS, viewName))
    throw new Error(`showAnagrams: unknown view "${view.name}": use one of ${Object.keys(VIEWS).join(', ')}`);
  checkFigureId(meta.id);
  checkItems(
    'showAnagrams',
    items.map((it, k) => [`items[${k}].upright`, it?.upright]),
    items.length,
  );
  const flipped = items.map((it) => view.view(it.upright));
  let grid: Buffer;
  try {
    grid = await makeGrid(
      items.flatMap((it, k) => [it.upright, flipped[k]]),
      {
        title: meta.title,
        cols: meta.cols ?? 2,
        captions:
          meta.captions ??
          items.flatMap((it) => [`upright: ${it.uprightPrompt}`, `${ANAGRAM_LABEL[viewName].slice(2)}: ${it.flippedPrompt}`]),
        range: meta.range,
        scale: meta.scale,
      },
    );
  } finally {
    tf.dispose(flipped);
  }
  const tiles: TileFiles<AnagramTile>[] = [];
  for (const it of items) {
    const [, height, width] = it.upright.shape;
    tiles.push({
      png: await tensorToPng(it.upright, meta.range),
      width,
      height,
      uprightPrompt: it.uprightPrompt,
      flippedPrompt: it.flippedPrompt,
      ...(viewName === 'flip' ? {} : { view: viewName }),
    });
  }
  const saved = registerFigure({ id: meta.id, title: meta.title, caption: meta.caption, kind: 'anagram' }, { png: grid, anagrams: tiles });
  const html = tiles.map((t) => anagramTileHtml({ ...t, src: dataUrl(t.png) }));
  display('anagrams', meta, grid, html, 'hover, click or tap a tile to flip it', saved);
}

/**
 * Shows hybrid images: the static grid (with `far` given for every item: far | near per row,
 * captions "far: …" / "near: …"; without: the hybrids alone) and tiles with a size slider that
 * shrinks each hybrid down to 16 px (seen from afar). Registers a figure of kind 'hybrid' (grid +
 * one PNG per hybrid + prompts). Does not dispose the inputs.
 */
export async function showHybrids(items: HybridItem[], meta: FigureMeta & GridOptions): Promise<void> {
  checkFigureId(meta.id);
  const withFar = items.filter((it) => it?.far !== undefined).length;
  if (withFar !== 0 && withFar !== items.length) {
    throw new Error(`showHybrids: ${withFar} of ${items.length} items have a far image; give far for every item or for none.`);
  }
  checkItems(
    'showHybrids',
    items.flatMap((it, k): Array<[string, tf.Tensor | undefined]> => [
      [`items[${k}].image`, it?.image],
      ...(withFar ? [[`items[${k}].far`, it.far] as [string, tf.Tensor | undefined]] : []),
    ]),
    items.length,
  );
  const grid = await makeGrid(withFar ? items.flatMap((it) => [it.far!, it.image]) : items.map((it) => it.image), {
    title: meta.title,
    cols: meta.cols ?? (withFar ? 2 : Math.min(items.length, 4)),
    captions:
      meta.captions ??
      (withFar
        ? items.flatMap((it) => [`far: ${it.farPrompt}`, `near: ${it.nearPrompt}`])
        : items.map((it) => `near ${it.nearPrompt} / far ${it.farPrompt}`)),
    range: meta.range,
    scale: meta.scale,
  });
  const tiles: TileFiles<HybridTile>[] = [];
  for (const it of items) {
    const [, height, width] = it.image.shape;
    tiles.push({ png: await tensorToPng(it.image, meta.range), width, height, farPrompt: it.farPrompt, nearPrompt: it.nearPrompt });
  }
  const saved = registerFigure({ id: meta.id, title: meta.title, caption: meta.caption, kind: 'hybrid' }, { png: grid, hybrids: tiles });
  const html = tiles.map((t) => hybridTileHtml({ ...t, src: dataUrl(t.png) }));
  display('hybrids', meta, grid, html, 'drag a slider (or press far) to see the image from afar', saved);
}
