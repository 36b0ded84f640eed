/**
 * Line charts: interactive Plotly charts in notebooks and in the report, plus a static PNG (an SVG
 * line plot rendered by sharp) so every figure also exists as a PNG.
 *
 * Plotly comes from the npm package plotly.js-dist-min, embedded into the page, never from a CDN.
 * In a notebook the first chart of a kernel session carries the library (about 4.8 MB) inside its
 * output; later charts reuse window.Plotly. Each chart output holds the static PNG as its initial
 * content, so a front end that does not run scripts (an untrusted notebook, GitHub's viewer) still
 * shows the curve. Jupyter only runs output scripts of trusted notebooks: scripts/figures.sh signs
 * the notebooks it executes (`jupyter trust`), and cells you run yourself are trusted.
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { FONT_FAMILY } from './grid';
import { escapeXml } from './notebook';

export interface Series {
  name: string;
  x: number[];
  y: number[];
}

export interface LossCurveOptions {
  id: string;
  title: string;
  caption?: string;
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  /** Logarithmic x axis (e.g. numbers of sampling steps 1 … 300). */
  logX?: boolean;
  /** Draw a marker at every point (short series of measurements rather than per-step curves). */
  markers?: boolean;
}

/** A Plotly figure: the `data` and `layout` arguments of Plotly.newPlot. */
export interface PlotlySpec {
  data: Array<Record<string, unknown>>;
  layout: Record<string, unknown>;
}

// Plotly's default colour cycle, so the static PNG matches the live chart.
export const COLORS = ['#636efa', '#EF553B', '#00cc96', '#ab63fa', '#FFA15A', '#19d3f3', '#FF6692', '#B6E880', '#FF97FF', '#FECB52'];

/** Checks series and returns a one-line error for bad input. */
export function checkSeries(series: Series[]): void {
  if (!Array.isArray(series) || series.length === 0) throw new Error('showLossCurve: series is empty; pass [{name, x, y}, ...].');
  for (const s of series) {
    if (!s || !Array.isArray(s.x) || !Array.isArray(s.y))
      throw new Error(`showLossCurve: series "${s?.name}" needs number arrays x and y.`);
    if (s.x.length !== s.y.length)
      throw new Error(`showLossCurve: series "${s.name}" has ${s.x.length} x values but ${s.y.length} y values.`);
  }
}

/** The Plotly spec of a line chart. */
export function lineChartSpec(opts: Omit<LossCurveOptions, 'id'>): PlotlySpec {
  checkSeries(opts.series);
  return {
    data: opts.series.map((s, i) => ({
      type: 'scatter',
      mode: opts.markers ? 'lines+markers' : 'lines',
      name: s.name,
      x: s.x,
      y: s.y,
      line: { color: COLORS[i % COLORS.length], width: 2 },
    })),
    layout: {
      title: { text: opts.title },
      // Log axes carry the static chart's ticks (logTicks) written out in full, so 0.05 reads
      // "0.05" and not Plotly's small "5"; their titles say they are logarithmic.
      xaxis: {
        title: { text: axisTitle(opts.xLabel ?? 'step', opts.logX) },
        ...(opts.logX ? { type: 'log', ...plotlyLogTicks(opts.series.flatMap((s) => s.x)) } : {}),
      },
      yaxis: {
        title: { text: axisTitle(opts.yLabel ?? 'loss', opts.logY) },
        type: opts.logY ? 'log' : 'linear',
        ...(opts.logY ? plotlyLogTicks(opts.series.flatMap((s) => s.y)) : {}),
      },
      margin: { l: 70, r: 20, t: 50, b: 50 },
      height: 400,
      showlegend: opts.series.length > 1,
      // A hover label wherever the pointer is over the plot: every series' point nearest in x, at
      // any distance (a series of a few measurements has points far apart), with whole series
      // names. Plotly's default ('closest' within 20 px of a point) showed nothing over the
      // plot's empty area.
      hovermode: 'x unified',
      hoverdistance: -1,
      hoverlabel: { namelength: -1 },
    },
  };
}

/** Plotly tick settings of a log axis over these values: logTicks' values with their full labels. */
export function plotlyLogTicks(values: ArrayLike<number>): { tickmode?: 'array'; tickvals?: number[]; ticktext?: string[] } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > 0 && Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!(hi >= lo)) return {};
  const vals = logTicks(Math.log10(lo), Math.log10(hi)).map((e) => Number((10 ** e).toPrecision(12)));
  return { tickmode: 'array', tickvals: vals, ticktext: vals.map(fmtTick) };
}

function axisTitle(label: string, log?: boolean): string {
  return log ? `${label} (log scale)` : label;
}

/**
 * Ticks of a log axis spanning [lo, hi] in log10 units: the decades, or 1, 2 and 5 of each decade
 * when fewer than four decades are in range (round plain values when less than 1 to 5). Returned in log10 units.
 */
export function logTicks(lo: number, hi: number): number[] {
  const decades: number[] = [];
  for (let e = Math.ceil(lo - 1e-9); e <= Math.floor(hi + 1e-9); e++) decades.push(e);
  if (decades.length >= 4) return decades;
  const out: number[] = [];
  for (let e = Math.floor(lo) - 1; e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = e + Math.log10(m);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  if (out.length >= 2) return out;
  // Less than a factor of 2.5 in range: round values of the plain numbers, placed on the log axis.
  return niceTicks(10 ** lo, 10 ** hi)
    .filter((v) => v > 0 && Math.log10(v) >= lo - 1e-9 && Math.log10(v) <= hi + 1e-9)
    .map((v) => Math.log10(v));
}

/** About 5 round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** Upper bound of one glyph's advance in the 11 px legend font (DejaVu Sans is about 0.6 em). */
export const LEGEND_GLYPH_PX = 6.8;

/** A static line plot as SVG (axes, ticks, labels, legend), width x height pixels. */
export function svgLinePlot(opts: Omit<LossCurveOptions, 'id'>, width = 720, height = 400): string {
  checkSeries(opts.series);
  const ml = 70,
    mr = 20,
    mt = 40,
    mb = 50;
  const pw = width - ml - mr,
    ph = height - mt - mb;
  const tf = (y: number) => (opts.logY ? Math.log10(y) : y);
  const tfx = (x: number) => (opts.logX ? Math.log10(x) : x);
  const pts = opts.series.map((s) =>
    s.x.map((x, i) => [tfx(x), tf(s.y[i])] as [number, number]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  );
  const all = pts.flat();
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 === y0) {
    const d = Math.abs(y0) * 0.1 || 1;
    y0 -= d;
    y1 += d;
  }
  const yPad = (y1 - y0) * 0.05;
  y0 -= yPad;
  y1 += yPad;
  const X = (x: number) => ml + ((x - x0) / (x1 - x0)) * pw;
  const Y = (y: number) => mt + ph - ((y - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="#f4f6fa"/>`);
  const xt = opts.logX ? logTicks(x0, x1) : niceTicks(x0, x1).filter((v) => v >= x0 && v <= x1);
  let yt: number[];
  if (opts.logY) {
    yt = logTicks(y0, y1);
  } else {
    yt = niceTicks(y0, y1).filter((v) => v >= y0 && v <= y1);
  }
  for (const v of xt) {
    parts.push(`<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${mt}" y2="${mt + ph}" stroke="#dde1ea"/>`);
    parts.push(
      `<text x="${X(v).toFixed(1)}" y="${mt + ph + 16}" text-anchor="middle" font-size="11">${fmtTick(opts.logX ? 10 ** v : v)}</text>`,
    );
  }
  for (const v of yt) {
    const label = opts.logY ? fmtTick(10 ** v) : fmtTick(v);
    parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#dde1ea"/>`);
    parts.push(`<text x="${ml - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${label}</text>`);
  }
  parts.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  pts.forEach((p, i) => {
    if (p.length === 0) return;
    // Thin very long series to about 2 points per pixel column.
    const stride = Math.max(1, Math.floor(p.length / (2 * pw)));
    const d = p
      .filter((_, j) => j % stride === 0 || j === p.length - 1)
      .map(([x, y], j) => `${j ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`)
      .join('');
    parts.push(`<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
    if (opts.markers)
      for (const [x, y] of p)
        parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${COLORS[i % COLORS.length]}"/>`);
  });
  parts.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`);
  parts.push(
    `<text x="${ml + pw / 2}" y="${height - 10}" text-anchor="middle" font-size="12">${escapeXml(axisTitle(opts.xLabel ?? 'step', opts.logX))}</text>`,
  );
  parts.push(
    `<text transform="translate(16 ${mt + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(axisTitle(opts.yLabel ?? 'loss', opts.logY))}</text>`,
  );
  if (opts.series.length > 1) {
    // Legend in the top-right corner, as wide as its longest name (never cut: loss names are long).
    const legendW = 34 + Math.ceil(LEGEND_GLYPH_PX * Math.max(...opts.series.map((s) => s.name.length)));
    const lx = ml + pw - legendW - 4;
    parts.push(
      `<rect x="${lx}" y="${mt + 4}" width="${legendW}" height="${opts.series.length * 16 + 6}" fill="#fff" fill-opacity="0.85" stroke="#dde1ea"/>`,
    );
    opts.series.forEach((s, i) => {
      const y = mt + 18 + i * 16;
      parts.push(
        `<line x1="${lx + 6}" x2="${lx + 26}" y1="${y - 4}" y2="${y - 4}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
      );
      parts.push(`<text x="${lx + 30}" y="${y}" font-size="11">${escapeXml(s.name)}</text>`);
    });
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="${FONT_FAMILY}" fill="#222">${parts.join('')}</g></svg>`;
}

/** Static PNG of a line chart. */
export async function linePlotPng(opts: Omit<LossCurveOptions, 'id'>, width = 720, height = 400): Promise<Buffer> {
  return sharp(Buffer.from(svgLinePlot(opts, width, height)))
    .png()
    .toBuffer();
}

let plotlySource: string | undefined;

/** The plotly.js bundle from node_modules (throws a one-line error when it is missing). */
export function plotlyPath(): string {
  try {
    return require.resolve('plotly.js-dist-min/plotly.min.js');
  } catch {
    throw new Error('plotly.js-dist-min is not installed: run `npm ci` (or scripts/setup.sh).');
  }
}

/**
 * A <script> that defines window.Plotly once. The bundle is wrapped so that AMD/CommonJS
 * globals of the host page (Jupyter's require.js) cannot capture it.
 */
export function plotlyScriptTag(): string {
  plotlySource ??= fs.readFileSync(plotlyPath(), 'utf8').replace(/<\/script/gi, '<\\/script');
  return `<script type="text/javascript">if (!window.Plotly) { (function (module, exports, define) {\n${plotlySource}\n}).call(window); }</script>`;
}

/** Plotly's config for every chart: resizes with its output, no Plotly logo in the mode bar. */
export const PLOTLY_CONFIG = { responsive: true, displaylogo: false };

/** Plotly's own MIME type, which front-ends with a Plotly renderer draw (VS Code, JupyterLab with jupyterlab-plotly). */
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

/**
 * The chart as Plotly's MIME bundle entry (the figure and its config), sent beside the HTML: a
 * front-end with a Plotly renderer draws it natively, one without shows the HTML (classic Notebook,
 * JupyterLab and Notebook 7 without the extension).
 */
export function plotlyMimeData(spec: PlotlySpec): { data: PlotlySpec['data']; layout: PlotlySpec['layout']; config: typeof PLOTLY_CONFIG } {
  return { data: spec.data, layout: spec.layout, config: PLOTLY_CONFIG };
}

/**
 * The HTML of one chart: a div that first shows the static PNG, then is replaced by the live
 * chart as soon as window.Plotly exists (immediately, or when a later script defines it).
 */
export function chartHtml(divId: string, spec: PlotlySpec, pngBase64?: string, alt = 'chart'): string {
  const json = JSON.stringify(spec).replace(/</g, '\\u003c');
  const img = pngBase64 ? `<img src="data:image/png;base64,${pngBase64}" alt="${escapeXml(alt)}" style="max-width:100%"/>` : '';
  return `<div id="${divId}" class="diffusion-plot" style="width:100%;max-width:860px;min-height:400px">${img}</div>
<script type="text/javascript">(function () {
  var spec = ${json};
  function draw() {
    var el = document.getElementById(${JSON.stringify(divId)});
    if (!el || el.getAttribute('data-drawn')) return;
    el.setAttribute('data-drawn', '1'); el.innerHTML = '';
    window.Plotly.newPlot(el, spec.data, spec.layout, ${JSON.stringify(PLOTLY_CONFIG)});
  }
  if (window.Plotly) draw(); else (window.__diffusionPlots = window.__diffusionPlots || []).push(draw);
})();</script>`;
}

/** Runs the charts queued before Plotly was loaded (used right after plotlyScriptTag). */
export const FLUSH_QUEUE_SCRIPT = `<script type="text/javascript">(window.__diffusionPlots || []).splice(0).forEach(function (f) { f(); });</script>`;
