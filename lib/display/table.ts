/**
 * Tables of numbers: aligned text in a terminal (the first column left, the others right) and an
 * HTML table in a notebook, from the same cells. Callers format the numbers (3 significant
 * figures, units in the header) so both renderings say the same thing.
 */
import { escapeXml, isNotebook, sendDisplay, showCaption } from './notebook';

export interface Table {
  /** Column headers, with units where there are any ("FD ratio", "background (× real)"). */
  columns: string[];
  /** One array of formatted cells per row, as many as columns. */
  rows: string[][];
}

function check(t: Table): void {
  for (const [i, r] of t.rows.entries()) {
    if (r.length !== t.columns.length) throw new Error(`table row ${i} has ${r.length} cells for ${t.columns.length} columns`);
  }
}

/** The table as aligned text: the first column left-aligned, the others right-aligned. */
export function formatTable(t: Table): string {
  check(t);
  const w = t.columns.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])))
      .join('  ')
      .trimEnd();
  return [line(t.columns), ...t.rows.map(line)].join('\n');
}

/** A cell of words, not a number with its unit ("FD ratio 9.06, 44.3% confident"): it may wrap. */
function isWords(c: string): boolean {
  return /\S\s+\S/.test(c) && /[A-Za-z]{2}/.test(c);
}

/**
 * The table as HTML: numbers right-aligned and never wrapped; headers, the first (label) column
 * and columns of words wrap, so a wide table fits a notebook output (a JupyterLab output beside its
 * file browser is about 950 px wide) instead of scrolling sideways.
 */
export function tableHtml(t: Table): string {
  check(t);
  const words = t.columns.map((_, i) => i === 0 || t.rows.some((r) => isWords(r[i])));
  const cell = (tag: 'th' | 'td', c: string, i: number) => {
    const wrap = tag === 'th' || words[i] ? `white-space:normal${i === 0 ? ';max-width:22em' : ''}` : 'white-space:nowrap';
    const align = `text-align:${words[i] ? 'left' : 'right'}${tag === 'th' ? ';vertical-align:bottom' : ''}`;
    return `<${tag} style="${align};padding:2px 10px;${wrap}">${escapeXml(c)}</${tag}>`;
  };
  const head = `<tr style="background:#eef1f6">${t.columns.map((c, i) => cell('th', c, i)).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('');
  return `<table style="border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums">${head}${body}</table>`;
}

/** Shows a table: HTML (with the aligned text as its plain form) in a notebook, the text in a terminal. */
export function showTable(t: Table, opts: { caption?: string } = {}): void {
  const text = formatTable(t);
  if (isNotebook()) {
    sendDisplay({ 'text/html': tableHtml(t), 'text/plain': text });
    showCaption(opts.caption);
  } else {
    console.log(text + (opts.caption ? `\n${opts.caption}` : ''));
  }
}
