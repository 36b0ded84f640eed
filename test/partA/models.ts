/**
 * The two oracle "models" every Part A test runs on, as lib Denoisers and as float64 references
 * built from the same description. A: 1 channel, 12×10 (non-square to catch H/W mix-ups), linear
 * T = 300, fixed_large, [0,1], unbatched. B: 3 channels, 64×64, cosine T = 1000, learned_range with
 * a position-dependent variance channel, [-1,1], batched (predictMany).
 */
import { makeOracleDenoiser, oracleMuMap, type OracleClass } from '../../lib/models/oracle';
import { cosineSchedule, linearSchedule, type NoiseSchedule } from '../../lib/schedulers/schedule';
import type { DDPMDenoiser } from '../../lib/models/denoiser';
import type { VarianceType } from '../../lib/schedulers/ddpm';
import type { RefModel } from './reference';

export interface ModelPair {
  den: DDPMDenoiser;
  ref: RefModel;
  /** a conditional prompt and a second one */
  p1: string;
  p2: string;
}

interface Desc {
  name: string;
  schedule: NoiseSchedule;
  H: number;
  W: number;
  C: number;
  varianceType: VarianceType;
  valueRange: [number, number];
  batched: boolean;
  classes: Record<string, OracleClass>;
  vFn?: (t: number, h: number, w: number, c: number) => number;
}

function build(d: Desc, p1: string, p2: string): ModelPair {
  const den = makeOracleDenoiser({
    name: d.name,
    schedule: d.schedule,
    imageSize: [d.H, d.W],
    channels: d.C,
    learnedVariance: d.varianceType === 'learned_range',
    valueRange: d.valueRange,
    batched: d.batched,
    classes: d.classes,
    varianceChannel: d.vFn,
    neutralPrompt: 'neutral' in d.classes ? 'neutral' : 'a high quality photo',
  });
  const classes: RefModel['classes'] = {};
  for (const [k, c] of Object.entries(d.classes)) classes[k] = { mu: Float64Array.from(oracleMuMap(c, d.H, d.W, d.C)), s: c.s };
  const vFn = d.vFn ?? ((t: number) => 0.6 * Math.cos((Math.PI * t) / d.schedule.T));
  const ref: RefModel = {
    H: d.H,
    W: d.W,
    C: d.C,
    alphasCumprod: d.schedule.alphasCumprod,
    varianceType: d.varianceType,
    classes,
    v: (t) => {
      const out = new Float64Array(d.H * d.W * d.C);
      for (let h = 0; h < d.H; h++)
        for (let w = 0; w < d.W; w++) for (let c = 0; c < d.C; c++) out[(h * d.W + w) * d.C + c] = Math.fround(vFn(t, h, w, c));
      return out;
    },
  };
  return { den, ref, p1, p2 };
}

export function modelA(opts: { symmetric?: boolean } = {}): ModelPair {
  const H = 12;
  const sym = (h: number) => Math.min(h, H - 1 - h); // flip-symmetric profile along H
  const row = opts.symmetric ? sym : (h: number) => h;
  return build(
    {
      name: opts.symmetric ? 'oracle A (flip-symmetric)' : 'oracle A',
      schedule: linearSchedule(1e-4, 0.02, 300),
      H,
      W: 10,
      C: 1,
      varianceType: 'fixed_large',
      valueRange: [0, 1],
      batched: false,
      classes: {
        neutral: { mu: 0.3, s: 0.2 },
        '': { mu: 0.25, s: 0.3 },
        seven: { mu: (h, w) => 0.1 + 0.06 * row(h) + 0.01 * w, s: 0.15 },
        two: { mu: (h, w) => 0.9 - 0.05 * row(h) - 0.02 * (w % 3), s: 0.1 },
      },
    },
    'seven',
    'two',
  );
}

export function modelB(): ModelPair {
  return build(
    {
      name: 'oracle B',
      schedule: cosineSchedule(1000),
      H: 64,
      W: 64,
      C: 3,
      varianceType: 'learned_range',
      valueRange: [-1, 1],
      batched: true,
      classes: {
        'a high quality photo': { mu: 0, s: 0.5 },
        '': { mu: (_h, _w, c) => 0.05 * (c - 1), s: 0.6 },
        'a lithograph of a skull': { mu: (h, _w, c) => Math.sin(h / 7) * 0.5 + 0.1 * c, s: 0.3 },
        'a lithograph of waterfalls': { mu: (_h, w, c) => Math.cos(w / 3) * 0.4 - 0.1 * c, s: 0.25 },
      },
      vFn: (t, h, _w, c) => 0.8 * Math.cos((Math.PI * t) / 1000 + h / 10) * (c === 1 ? -1 : 1),
    },
    'a lithograph of a skull',
    'a lithograph of waterfalls',
  );
}
