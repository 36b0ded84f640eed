/**
 * Training shown as it happens, in a notebook: a loss chart (per-step loss and its moving average)
 * and a grid of samples, each ONE output that is replaced in place (Jupyter's display_data with a
 * transient display_id, then update_display_data with the same id), plus the progress line.
 *
 *   const live = liveTraining({ id: 'train-time', title: 'Time-conditioned DDPM', total: steps });
 *   onStep:   live.step(step, loss)                 chart redrawn at most every 2 s (or `every` steps)
 *   epoch:    await live.epoch(e, samples, caption)  sample grid replaced, titled with the epoch
 *   end:      await live.done()                      final chart, progress line finished
 *
 * The chart is a PNG (an SVG line plot rendered by sharp, as ./plot.ts draws the static charts), so
 * it shows in untrusted notebooks and viewers that run no scripts; its text/plain fallback holds
 * the latest numbers. In a terminal (see isNotebook) only the progress line is printed (with
 * `total`), nothing else is written, and `inNotebook` is false so callers can skip making samples.
 * Nothing here disposes the caller's tensors, and nothing here creates tensors.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { makeGrid, type GridOptions } from './grid';
import { isNotebook, sendDisplay } from './notebook';
import { linePlotPng, type LossCurveOptions, type Series } from './plot';
import { progress, type Progress } from './progress';

export interface LiveTrainingOptions {
  /** Names the displays (made unique per call, so a re-run never updates an older cell's output). */
  id: string;
  /** Title of the loss chart. */
  title: string;
  /** y-axis label (default 'loss'). */
  yLabel?: string;
  /** Logarithmic y axis (default true). */
  logY?: boolean;
  /** Redraw the chart every this many steps; default: at most every `intervalMs`. */
  every?: number;
  /** Least time between chart redraws when `every` is not given (default 2000 ms). */
  intervalMs?: number;
  /** Steps of the moving average (default 50). */
  window?: number;
  /** Total steps: shows the progress line (in a notebook and in a terminal) and "step k/total". */
  total?: number;
  /** Label of the progress line (default the title). */
  label?: string;
  /** Total epochs, for "epoch k/epochs" in the grid's title. */
  epochs?: number;
  /** Title of the sample grid, followed by "after epoch k" (default 'Samples'). */
  gridTitle?: string;
}

/** Options of the grid drawn by LiveTraining.epoch (see makeGrid). */
export type LiveGridOptions = Pick<GridOptions, 'captions' | 'cols' | 'range' | 'scale'>;

export interface LiveTraining {
  /** True in a notebook: the displays are live. False in a terminal (progress line only). */
  readonly inNotebook: boolean;
  /** Records one step's loss (step = the global step number, the chart's x); info follows the progress bar (default "loss …"). */
  step(step: number, loss: number, info?: string): void;
  /**
   * Marks the end of an epoch: brings the chart up to date and, given images ([B,H,W,C] in [0,1]
   * or a list of batches, NOT disposed), replaces the sample grid, titled with the epoch and caption.
   */
  epoch(epoch: number, images?: tf.Tensor4D | tf.Tensor4D[], caption?: string, grid?: LiveGridOptions): Promise<void>;
  /** Waits for a chart redraw in progress (if any). */
  idle(): Promise<void>;
  /** Final chart and progress line. Safe to call twice; steps after it are ignored. */
  done(): Promise<void>;
}

/**
 * The loss curve's average line: the mean of the last w steps, drawn only where the window is
 * full (a shorter window at the start sits far above a falling loss and kinks when it fills), with
 * w = `window`, or a quarter of the run when that is shorter. Its name says what it is.
 */
export function windowMeans(x: number[], y: number[], window: number): Series {
  const w = Math.max(1, Math.min(Math.floor(window), Math.floor(y.length / 4)));
  const avg = movingAverage(y, w);
  return { name: `mean of the last ${w} steps`, x: x.slice(w - 1), y: avg.slice(w - 1) };
}

/** Moving average over the last `window` values (fewer at the start). */
export function movingAverage(y: number[], window: number): number[] {
  const w = Math.max(1, Math.floor(window));
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    s += y[i];
    if (i >= w) s -= y[i - w];
    out.push(s / Math.min(i + 1, w));
  }
  return out;
}

/** Shortest readable form of a loss value. */
function fmt(v: number): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
}

let counter = 0;

/** Starts the live displays of one training run (see the file comment). */
export function liveTraining(opts: LiveTrainingOptions): LiveTraining {
  if (opts.every !== undefined && !(Number.isInteger(opts.every) && opts.every > 0))
    throw new Error(`liveTraining: every must be a positive whole number of steps, got ${opts.every}`);
  const nb = isNotebook();
  const bar: Progress | null = opts.total !== undefined ? progress(opts.total, opts.label ?? opts.title) : null;
  const window = opts.window ?? 50;
  const intervalMs = opts.intervalMs ?? 2000;
  const uid = `${process.pid}-${Date.now()}-${++counter}`;
  const chartId = `live-${opts.id}-chart-${uid}`;
  const gridId = `live-${opts.id}-grid-${uid}`;
  const xs: number[] = [];
  const ys: number[] = [];
  let rendered = 0; // points in the chart last sent (or being drawn)
  let lastRenderAt = 0;
  let chartShown = false;
  let gridShown = false;
  let inflight: Promise<void> | null = null;
  let finished = false;
  let warned = false;

  const warn = (e: unknown) => {
    if (warned) return;
    warned = true;
    console.warn(
      `liveTraining ${opts.id}: could not draw the live display (${e instanceof Error ? e.message : String(e)}); training goes on`,
    );
  };

  const render = (): Promise<void> => {
    const x = xs.slice();
    const y = ys.slice();
    const mean = windowMeans(x, y, window);
    const lastMean = mean.y[mean.y.length - 1];
    const n = x.length;
    const last = x[n - 1];
    const at = `step ${last}${opts.total !== undefined ? `/${opts.total}` : ''}`;
    const chart: Omit<LossCurveOptions, 'id'> = {
      title: `${opts.title}: ${at}, loss ${fmt(lastMean)} (${mean.name})`,
      series: [{ name: 'loss per step', x, y }, mean],
      xLabel: 'step',
      yLabel: opts.yLabel ?? 'loss',
      logY: opts.logY ?? true,
    };
    const text = `[live ${opts.id}] ${opts.title}: ${at}, loss ${fmt(y[n - 1])}, ${mean.name} ${fmt(lastMean)}`;
    rendered = n;
    lastRenderAt = Date.now();
    const p: Promise<void> = linePlotPng(chart)
      .then((png) => {
        sendDisplay({ 'image/png': png.toString('base64'), 'text/plain': text }, { displayId: chartId, update: chartShown });
        chartShown = true;
      })
      .catch(warn)
      .finally(() => {
        if (inflight === p) inflight = null;
      });
    inflight = p;
    return p;
  };

  /** Waits for any redraw, then draws the points not yet drawn. */
  const catchUp = async () => {
    while (inflight) await inflight;
    if (xs.length > rendered) await render();
  };

  return {
    inNotebook: nb,
    step(step, loss, info) {
      if (finished) return;
      bar?.tick(1, info ?? `loss ${loss.toFixed(4)}`);
      if (!nb) return;
      xs.push(step);
      ys.push(loss);
      const due =
        rendered === 0 || (opts.every !== undefined ? xs.length - rendered >= opts.every : Date.now() - lastRenderAt >= intervalMs);
      if (due && !inflight) void render();
    },
    async epoch(epoch, images, caption, grid = {}) {
      if (!nb || finished) return;
      await catchUp();
      if (!images) return;
      const title = `${opts.gridTitle ?? 'Samples'} after epoch ${epoch}${opts.epochs !== undefined ? `/${opts.epochs}` : ''}`;
      try {
        const png = await makeGrid(images, { ...grid, title: caption ? `${title} · ${caption}` : title });
        sendDisplay(
          { 'image/png': png.toString('base64'), 'text/plain': `[live ${opts.id}] ${title}${caption ? ` (${caption})` : ''}` },
          { displayId: gridId, update: gridShown },
        );
        gridShown = true;
      } catch (e) {
        warn(e);
      }
    },
    async idle() {
      while (inflight) await inflight;
    },
    async done() {
      if (finished) return;
      finished = true;
      if (nb) await catchUp();
      bar?.done();
    },
  };
}
