/**
 * What notebooks/partB-flow.ipynb reads besides lib/: the quality-against-steps numbers that
 * `npm run partb-quality -- --models … --steps …` measured and stored in the manifests (one row per
 * step count), as chart series and an aligned table. No algorithm lives here.
 */
import * as fs from 'node:fs';
import type { Series } from '../../lib/display';
import type { Table } from '../../lib/display/table';
import type { QualityRow } from '../../lib/evaluation/quality';
import { manifestPath, type ShippedModel } from '../../lib/weights/shipped';

/** One measured row: the quality table's numbers at a number of sampling steps. */
export type StepsRow = QualityRow & { steps: number; sampler: string; seconds?: number };

/** The models compared, in the order the chart and table list them, with their display names. */
export const COMPARED: ReadonlyArray<[ShippedModel, string]> = [
  ['flow-time', 'flow matching, time-conditioned'],
  ['flow-time-reflow', 'flow matching after one reflow round'],
  ['time', 'DDPM, time-conditioned'],
  ['flow-class', 'flow matching, class-conditioned (γ = 5)'],
  ['class', 'DDPM, class-conditioned (γ = 5)'],
];

/** The rows a manifest holds by step count (empty when not measured). */
export function stepsRows(model: ShippedModel): StepsRow[] {
  const f = manifestPath(model);
  if (!fs.existsSync(f)) return [];
  const q = (JSON.parse(fs.readFileSync(f, 'utf8')) as { quality?: { bySteps?: StepsRow[] } }).quality;
  return (q?.bySteps ?? []).filter((r) => typeof r.fdRatio === 'number');
}

/** Chart series of one number against the steps, one line per measured model. */
export function stepsSeries(pick: (r: StepsRow) => number | undefined): Series[] {
  const out: Series[] = [];
  for (const [model, name] of COMPARED) {
    const rows = stepsRows(model).filter((r) => pick(r) !== undefined);
    if (rows.length) out.push({ name, x: rows.map((r) => r.steps), y: rows.map((r) => pick(r)!) });
  }
  return out;
}

/** The comparison as a table (lib/display showTable): model, steps, n, FD ratio, confident share, accuracy, background, sampling seconds. */
export function stepsTable(): Table {
  const columns = ['model', 'steps', 'n', 'FD ratio', 'conf ≥ 0.9', 'accuracy', 'background (× real)', 'sampling (s)'];
  const rows: string[][] = [];
  for (const [model, name] of COMPARED) {
    for (const r of stepsRows(model)) {
      rows.push([
        name,
        String(r.steps),
        String(r.n),
        r.fdRatio.toPrecision(3),
        `${(100 * r.confidentShare).toPrecision(3)}%`,
        r.accuracy === undefined ? '—' : `${(100 * r.accuracy).toPrecision(3)}%`,
        `${r.backgroundRatio.toPrecision(3)}×`,
        r.seconds === undefined ? '—' : String(r.seconds),
      ]);
    }
  }
  if (!rows.length) rows.push(['(not measured yet: npm run partb-quality -- --models flow-time,flow-class --steps 1,2,4,8,16,32,64)', '', '', '', '', '', '', '']);
  return { columns, rows };
}
