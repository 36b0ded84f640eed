/**
 * The display layer of every notebook and command.
 *
 *   showImages(images, {id, title, captions?, caption?, cols?, range?, scale?})  image grid
 *   showLossCurve({id, title, series, xLabel?, yLabel?, logY?, caption?})       Plotly chart
 *   showGif(frames, {id, title, fps?, ...})                                     animation
 *   showAnagrams([{upright, uprightPrompt, flippedPrompt}], {id, title, ...})   visual anagrams that flip on hover/tap
 *   showHybrids([{image, farPrompt, nearPrompt, far?}], {id, title, ...})       hybrid images with a zoom-out slider
 *   progress(total, label) -> {tick(n?, info?), done()}                          progress line
 *   liveTraining({id, title, total?, ...}) -> {step, epoch, done}                live loss chart + sample grid
 *   makeGrid(images, opts) -> PNG bytes; isNotebook()
 *
 * In a tslab notebook the show* functions display inline; in a terminal they print one line.
 * Under `npm run figures` (FIGURES_DIR set) they also register the figure for the report: see
 * ./registry.ts. Figure ids are unique per notebook (a re-used id replaces the earlier figure).
 * No show* function disposes the tensors it is given; the tensors it makes itself it releases.
 *
 * Notebooks import the compiled library, relative to the notebook's folder (tslab's cwd):
 *   import { showImages } from '../dist/lib/display';
 */
import * as tf from '@tensorflow/tfjs-core';
import { gridPng, type GridOptions } from './grid';
import { makeGif, type GifOptions } from './gif';
import { isNotebook, sendDisplay, escapeXml, showCaption, terminalNote } from './notebook';
import { registerFigure, checkFigureId, type FigureMeta } from './registry';
import {
  lineChartSpec,
  linePlotPng,
  chartHtml,
  plotlyScriptTag,
  plotlyMimeData,
  PLOTLY_MIME,
  FLUSH_QUEUE_SCRIPT,
  type LossCurveOptions,
} from './plot';

export { makeGrid, gridPng, gridLayout, type GridOptions, type GridLayout } from './grid';

/** The key of a figure output's metadata in the notebook: {id, captionsCut}. */
export const FIGURE_METADATA = 'diffusion/figure';
export { progress, progressPerCall, formatProgress, SectionTimer, type Progress, type SectionOptions } from './progress';
export { formatTable, tableHtml, showTable, type Table } from './table';
export { isNotebook } from './notebook';
export { makeGif, type GifOptions } from './gif';
export { lineChartSpec, svgLinePlot, linePlotPng, type Series, type LossCurveOptions, type PlotlySpec } from './plot';
export {
  registerFigure,
  readManifest,
  type FigureRecord,
  type FigureKind,
  type FigureMeta,
  type AnagramTile,
  type HybridTile,
} from './registry';
export { showAnagrams, showHybrids, type AnagramItem, type HybridItem } from './illusions';
export { liveTraining, movingAverage, windowMeans, type LiveTraining, type LiveTrainingOptions, type LiveGridOptions } from './live';

/**
 * Shows a grid of images [B,H,W,C] (or a list of batches) with the title drawn on top and one
 * caption per tile. Does not dispose the tensors. (Returns nothing, so that a call ending a cell
 * prints nothing; use makeGrid for the PNG bytes.)
 */
export async function showImages(images: tf.Tensor4D | tf.Tensor4D[], opts: GridOptions & FigureMeta): Promise<void> {
  checkFigureId(opts.id);
  const { png, captionsCut } = await gridPng(images, { ...opts, title: opts.title });
  const saved = registerFigure({ id: opts.id, title: opts.title, caption: opts.caption, kind: 'image' }, { png });
  if (isNotebook()) {
    // FIGURE_METADATA: which figure this output is, and whether a tile caption had to be cut (tests read it).
    sendDisplay(
      { 'image/png': png.toString('base64'), 'text/plain': `[figure ${opts.id}] ${opts.title}` },
      { metadata: { [FIGURE_METADATA]: { id: opts.id, captionsCut } } },
    );
    showCaption(opts.caption);
  } else {
    const n = Array.isArray(images) ? images.reduce((s, t) => s + t.shape[0], 0) : images.shape[0];
    terminalNote('figure', opts, `${n} image${n === 1 ? '' : 's'}`, saved);
  }
}

let plotlySent = false;
let chartCount = 0;

/**
 * Shows line charts (e.g. training loss per step) as an interactive Plotly chart, with a static
 * PNG rendering saved for the report (linePlotPng gives those bytes).
 */
export async function showLossCurve(opts: LossCurveOptions): Promise<void> {
  checkFigureId(opts.id);
  const spec = lineChartSpec(opts);
  const png = await linePlotPng(opts);
  const saved = registerFigure(
    { id: opts.id, title: opts.title, caption: opts.caption, kind: 'plot' },
    { png, plot: spec, width: 720, height: 400 },
  );
  if (isNotebook()) {
    const divId = `plot-${opts.id}-${process.pid}-${++chartCount}`;
    // The first chart of this kernel session carries plotly.js itself (see ./plot.ts).
    const lib = plotlySent ? '' : plotlyScriptTag() + FLUSH_QUEUE_SCRIPT;
    plotlySent = true;
    const b64 = png.toString('base64');
    sendDisplay({
      [PLOTLY_MIME]: plotlyMimeData(spec),
      'text/html': chartHtml(divId, spec, b64, opts.title) + lib,
      'image/png': b64,
      'text/plain': `[chart ${opts.id}] ${opts.title}`,
    });
    showCaption(opts.caption);
  } else {
    const last = opts.series
      .map((s) => `${s.name}: ${s.y.length} points${s.y.length ? `, last ${Number(s.y[s.y.length - 1].toPrecision(4))}` : ''}`)
      .join('; ');
    terminalNote('chart', opts, last, saved);
  }
}

/**
 * Shows an animation: each frame a batch [B,H,W,C] drawn as a grid (same layout for all frames).
 * Saves <id>.gif, <id>.png (the last frame) and <id>.poster.png (the first, which the report shows
 * until the reader hovers or taps) for the report (makeGif gives the bytes).
 */
export async function showGif(frames: tf.Tensor4D[], opts: GifOptions & FigureMeta): Promise<void> {
  checkFigureId(opts.id);
  const { gif, firstPng, lastPng, width, height } = await makeGif(frames, opts);
  const saved = registerFigure(
    { id: opts.id, title: opts.title, caption: opts.caption, kind: 'gif' },
    { png: lastPng, gif, poster: firstPng, width, height },
  );
  if (isNotebook()) {
    const b64 = Buffer.from(gif).toString('base64');
    sendDisplay({
      'text/html': `<img src="data:image/gif;base64,${b64}" alt="${escapeXml(opts.title)}" width="${width}" height="${height}"/>`,
      'image/gif': b64,
      'image/png': lastPng.toString('base64'),
      'text/plain': `[animation ${opts.id}] ${opts.title}`,
    });
    showCaption(opts.caption);
  } else {
    terminalNote('animation', opts, `${frames.length} frames, ${width}x${height}`, saved);
  }
}
