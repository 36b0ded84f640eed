/**
 * The report: figures/index.html, built from the manifests the display layer wrote while the
 * notebooks ran (lib/display/registry.ts). All figures of all notebooks, notebooks in file-name
 * order, figures in the order they were shown, each with its title and caption; charts are live
 * Plotly charts (plotly.min.js is copied next to index.html: no network) over their static PNG.
 * The illusions are shown as the course's pages show them (lib/display/illusions.ts, its CSS and
 * script inlined): visual anagrams flip on hover or tap, hybrid images have a size slider, GIFs
 * show their first frame until hovered or tapped. Records from before those fields (a GIF without
 * a poster, say) render as plain images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readManifest, type FigureRecord } from '../display/registry';
import { chartHtml, plotlyPath, type PlotlySpec } from '../display/plot';
import { escapeXml } from '../display/notebook';
import { ILLUSION_CSS, ILLUSION_SCRIPT, anagramTileHtml, hybridTileHtml, gifTileHtml } from '../display/illusions';
import { writeFileAtomic } from '../files';

/** What happened to one notebook in this run (shown at the top of the report). */
export interface NotebookRun {
  notebook: string;
  ok: boolean;
  seconds: number;
  error?: string;
  /** Executed notebook (and its HTML rendering), relative to the report folder. */
  executed?: string;
  html?: string;
}

/** Notebook names (sub-folders with a manifest) in the figures folder, sorted. */
export function reportNotebooks(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'manifest.jsonl')))
    .map((d) => d.name)
    .sort();
}

function figureHtml(dir: string, r: FigureRecord): string {
  const anchor = `${r.notebook}--${r.id}`;
  let body: string;
  if (r.kind === 'plot' && r.plot && fs.existsSync(path.join(dir, r.plot))) {
    const spec = JSON.parse(fs.readFileSync(path.join(dir, r.plot), 'utf8')) as PlotlySpec;
    // The chart div starts with the static PNG as <img> and is replaced by the live chart.
    body = chartHtml(`plot-${anchor}`, spec, undefined, r.title).replace(
      '</div>',
      `<img src="${escapeXml(r.png)}" alt="${escapeXml(r.title)}" style="max-width:100%"/></div>`,
    );
  } else if (r.kind === 'anagram' && r.anagrams?.length) {
    body = `<div class="dn-tiles">${r.anagrams.map((t) => anagramTileHtml({ ...t, src: t.png })).join('')}</div>`;
  } else if (r.kind === 'hybrid' && r.hybrids?.length) {
    body = `<div class="dn-tiles">${r.hybrids.map((t) => hybridTileHtml({ ...t, src: t.png })).join('')}</div>`;
  } else if (r.kind === 'gif' && r.gif && r.poster) {
    body = `<div class="dn-tiles">${gifTileHtml({ poster: r.poster, gif: r.gif, width: r.width, height: r.height, alt: r.title })}</div>`;
  } else if (r.kind === 'gif' && r.gif) {
    body = `<img src="${escapeXml(r.gif)}" alt="${escapeXml(r.title)}"/>`;
  } else {
    body = `<img src="${escapeXml(r.png)}" alt="${escapeXml(r.title)}"/>`;
  }
  const pngLabel = r.anagrams?.length || r.hybrids?.length ? 'grid png' : 'png';
  const caption = `<b>${escapeXml(r.title)}</b>${r.caption ? ` — ${escapeXml(r.caption)}` : ''} <span class="files">[<a href="${escapeXml(r.png)}">${pngLabel}</a>${r.gif ? `, <a href="${escapeXml(r.gif)}">gif</a>` : ''}]</span>`;
  return `<figure id="${escapeXml(anchor)}" class="fig fig-${r.kind}">\n${body}\n<figcaption>${caption}</figcaption>\n</figure>`;
}

/**
 * Writes <dir>/index.html (and copies plotly.min.js beside it). `runs` adds the status of the
 * notebooks executed by this run; `keep`, when given, limits the report to those notebook names
 * (figures of deleted or renamed notebooks are left out). Returns the number of figures.
 */
export function buildReport(dir: string, runs: NotebookRun[] = [], keep?: string[]): number {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(plotlyPath(), path.join(dir, 'plotly.min.js'));
  const sections: string[] = [];
  let total = 0;
  const toc: string[] = [];
  for (const nb of reportNotebooks(dir).filter((n) => !keep || keep.includes(n))) {
    const recs = readManifest(path.join(dir, nb, 'manifest.jsonl'));
    total += recs.length;
    const run = runs.find((r) => r.notebook === nb);
    const links = run?.html ? ` <span class="files">[<a href="${escapeXml(run.html)}">executed notebook</a>]</span>` : '';
    toc.push(`<li><a href="#nb-${escapeXml(nb)}">${escapeXml(nb)}</a> (${recs.length} figure${recs.length === 1 ? '' : 's'})</li>`);
    sections.push(
      `<section id="nb-${escapeXml(nb)}">\n<h2>${escapeXml(nb)}${links}</h2>\n${recs.map((r) => figureHtml(dir, r)).join('\n')}\n</section>`,
    );
  }
  const status = runs.length
    ? `<table class="runs"><tr><th>notebook</th><th>status</th><th>time</th></tr>${runs
        .map(
          (r) =>
            `<tr><td>${escapeXml(r.notebook)}</td><td class="${r.ok ? 'ok' : 'fail'}">${r.ok ? 'ok' : 'FAILED: ' + escapeXml(r.error ?? '')}</td><td>${r.seconds.toFixed(1)} s</td></tr>`,
        )
        .join('')}</table>`
    : '';
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Diffusion notebooks — figures</title>
<script src="plotly.min.js"></script>
<style>
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure.fig { margin: 1.5em 0; } figure.fig img { max-width: 100%; image-rendering: auto; }
figcaption { margin-top: .4em; font-size: .95em; } .files { font-size: .8em; color: #777; }
table.runs { border-collapse: collapse; font-size: .9em; } table.runs td, table.runs th { border: 1px solid #ddd; padding: .2em .6em; text-align: left; }
td.ok { color: #070; } td.fail { color: #b00; }
${ILLUSION_CSS}
</style>
</head>
<body>
<h1>Diffusion notebooks — figures</h1>
<p>${total} figure${total === 1 ? '' : 's'}, generated ${escapeXml(new Date().toISOString().replace('T', ' ').slice(0, 16))} UTC by <code>npm run figures</code>.</p>
${status}
<ul>${toc.join('')}</ul>
${sections.join('\n')}
<script>
${ILLUSION_SCRIPT}
</script>
</body>
</html>
`;
  writeFileAtomic(path.join(dir, 'index.html'), html);
  return total;
}
