/**
 * The quality table the Part B notebook prints under its sample figures: the numbers
 * `npm run partb-quality` measured for the shipped weights and wrote into their manifests
 * (lib/evaluation/quality.ts formats them). Retrained weights have not been measured: the text
 * says which command measures them.
 */
import * as fs from 'node:fs';
import { qualityTableCells, type QualityRow } from '../../lib/evaluation/quality';
import { formatTable, showTable, type Table } from '../../lib/display/table';
import { manifestPath, type ShippedModel } from '../../lib/weights/shipped';
import { findModel } from '../../lib/models/registry';

export interface QualityText {
  /** The table as aligned text (or why there is none). */
  text: string;
  /** The table's cells, when measured (showQuality draws them). */
  table?: Table;
  /** What the table was measured with (its caption). */
  note?: string;
  /** One line for the summary cell. */
  summary: string;
  /** The denoiser's test MSE at each σ, when measured. */
  mseBySigma?: Record<string, number>;
}

const MEASURE = 'node dist/scripts/partb-quality.js --models';

function isRow(q: unknown): q is QualityRow & { sampler?: string; measuredWith?: string } {
  const r = q as Partial<QualityRow> | undefined;
  return typeof r?.fd === 'number' && typeof r.fdReal === 'number' && typeof r.confidentShare === 'number' && Array.isArray(r.digitShares);
}

/** The quality of a model's shipped weights, from its manifest. */
export function qualityTable(model: ShippedModel, retrained = false): QualityText {
  if (retrained) return { text: `(retrained weights are not measured here: run \`${MEASURE} ${model} --weights <file> --no-write\`)`, summary: 'not measured' };
  const f = manifestPath(model);
  const q = fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as { quality?: unknown }).quality : undefined;
  if (findModel(model)?.sampling === null) {
    const mse = (q as { testMseBySigma?: Record<string, number> } | undefined)?.testMseBySigma;
    if (!mse) return { text: `(not measured: \`${MEASURE} denoiser\`)`, summary: 'not measured' };
    const table = { columns: ['noise level σ', 'test MSE'], rows: Object.entries(mse).map(([sg, v]) => [sg, v.toPrecision(3)]) };
    const at05 = mse['0.5'];
    return { text: formatTable(table), table, summary: `test MSE ${at05 === undefined ? '?' : at05.toPrecision(3)} at σ = 0.5`, mseBySigma: mse };
  }
  if (!isRow(q)) return { text: `(no Fréchet-distance judgement in ${f} yet: run \`${MEASURE} ${model}\`)`, summary: 'not measured with the Fréchet judge' };
  const table = qualityTableCells([q]);
  const summary =
    `FD ratio ${q.fdRatio.toPrecision(3)}, ${(100 * q.confidentShare).toPrecision(3)}% confident` +
    (q.accuracy !== undefined ? `, accuracy ${(100 * q.accuracy).toPrecision(3)}% (worst digit ${(100 * q.minDigitAccuracy!).toPrecision(3)}%)` : '') +
    `, background ${q.backgroundRatio.toPrecision(3)}× real`;
  const note = `Sampler: ${q.sampler ?? 'as measured'}; measured with \`${q.measuredWith ?? MEASURE}\`.`;
  return { text: `${formatTable(table)}\n${note}`, table, note, summary };
}

/** The quality table of a model under its figure: an HTML table in a notebook, aligned text in a terminal. */
export function showQuality(model: ShippedModel, retrained = false): void {
  const q = qualityTable(model, retrained);
  if (q.table) showTable(q.table, { caption: q.note });
  else console.log(q.text);
}

/** One row per model from its manifest: training budget, final loss and the quality summary. */
export function trainingSummary(models: readonly ShippedModel[]): Table {
  const rows = models.map((m) => {
    const f = manifestPath(m);
    if (!fs.existsSync(f)) return [m, '—', '—', '—', '—', `no manifest (${f})`];
    const j = JSON.parse(fs.readFileSync(f, 'utf8')) as { preset?: string; epochs?: number; finalLoss?: number; trainSeconds?: number; testAccuracy?: number };
    const quality = findModel(m) ? qualityTable(m).summary : `test accuracy ${(100 * (j.testAccuracy ?? NaN)).toPrecision(4)}%`;
    return [m, j.preset ?? '—', String(j.epochs ?? '—'), j.finalLoss === undefined ? '—' : j.finalLoss.toPrecision(3), j.trainSeconds === undefined ? '—' : String(j.trainSeconds), quality];
  });
  return { columns: ['model', 'preset', 'epochs', 'final loss', 'training (s)', 'quality'], rows };
}
