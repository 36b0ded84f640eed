/**
 * The quality table the Part B notebook prints under its sample figures: the numbers
 * `npm run partb-quality` measured for the shipped weights and wrote into their manifests
 * (lib/evaluation/quality.ts formats them). Retrained weights have not been measured: the text
 * says which command measures them.
 */
import * as fs from 'node:fs';
import { formatQualityTable, type QualityRow } from '../../lib/evaluation/quality';
import { manifestPath, type ShippedModel } from '../../lib/weights/shipped';

export interface QualityText {
  /** The table (or why there is none), for console.log under a figure. */
  text: string;
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
  if (model === 'denoiser') {
    const mse = (q as { testMseBySigma?: Record<string, number> } | undefined)?.testMseBySigma;
    return { text: mse ? JSON.stringify(mse) : `(not measured: \`${MEASURE} denoiser\`)`, summary: mse ? 'measured' : 'not measured', mseBySigma: mse };
  }
  if (!isRow(q)) return { text: `(no Fréchet-distance judgement in ${f} yet: run \`${MEASURE} ${model}\`)`, summary: 'not measured with the Fréchet judge' };
  const table = formatQualityTable([q]);
  const summary =
    `FD ratio ${q.fdRatio.toFixed(2)}, ${(100 * q.confidentShare).toFixed(1)}% confident` +
    (q.accuracy !== undefined ? `, accuracy ${(100 * q.accuracy).toFixed(1)}% (worst digit ${(100 * q.minDigitAccuracy!).toFixed(1)}%)` : '') +
    `, background ${q.backgroundRatio.toFixed(2)}× real`;
  return { text: `${table}\n(sampler: ${q.sampler ?? 'as measured'}; ${q.measuredWith ?? ''})`, summary };
}
