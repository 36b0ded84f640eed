/**
 * Which model the Part A notebook drives, and the per-model choices of its figures (prompts, test
 * images, guidance scale). The algorithms themselves (partA.ts) never see any of this.
 *
 * Order: DeepFloyd IF when its stage I weights and the prompt embeddings are present (lib/if);
 * else Part B's shipped class-conditioned MNIST weights (weights/*.weights whose header says
 * model 'class'); else, so that the notebook's plumbing still runs, an UNTRAINED class UNet,
 * named as such in every caption.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireDDPM, type DDPMDenoiser } from '../../lib/models/denoiser';
import { mnistDenoiser } from '../../lib/models/mnistDenoiser';
import { describeConfig, loadMnistDenoiser, PARTB_REGISTRY } from '../../lib/models/registry';
import { shippedWeightsPath } from '../../lib/weights/shipped';
import { UNet } from '../../lib/models/unet';
import { loadTensorFile } from '../../lib/weights/tensorFile';
import { setting } from '../../lib/config';
import { modelsRoot, PROJECT_ROOT, weightsDir } from '../../lib/paths';
import { parseUNetHeader } from '../../lib/weights/headers';

export type PartAModelKind = 'if' | 'mnist' | 'untrained';

export interface PartAModel {
  den: DDPMDenoiser;
  kind: PartAModelKind;
  /** One line saying which model was chosen and why. */
  why: string;
}

/**
 * Part B's shipped class-model weights in `dir`: partb-class.weights (lib/weights/shipped.ts's name)
 * when present, else the first other .weights file whose header says model 'class', preferring
 * names with "class" and leaving early checkpoints ("-early") last. Undefined when none.
 */
export function findMnistClassWeights(dir = weightsDir()): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  // The shipped class DDPM first, early checkpoints last.
  const shipped = path.basename(shippedWeightsPath('class'));
  const rank = (f: string) => (f === shipped ? 0 : f.includes('-early') ? 2 : 1);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.weights'))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const f of files) {
    try {
      const { meta } = loadTensorFile(path.join(dir, f));
      // The class-conditioned DDPM (the notebook's cells use its noise schedule).
      if (describeConfig(parseUNetHeader(meta, f).config) === PARTB_REGISTRY.class) return path.join(dir, f);
    } catch {
      // not a Part B weights file: skip it
    }
  }
  return undefined;
}

export interface SelectOptions {
  /** IF models folder (default IF_MODELS_DIR, else <root>/models). */
  ifRoot?: string;
  /** Part B weights folder (default <root>/weights). */
  weightsDir?: string;
  /** A Part B class weights file to use instead of searching (default PARTA_WEIGHTS; relative to the project root). */
  weightsFile?: string;
  /** Skip IF even when present (default false; PARTA_MODEL=mnist does the same). */
  noIF?: boolean;
  /** Allow the untrained fallback (default true; PARTA_REQUIRE_WEIGHTS=1 turns it off). */
  allowUntrained?: boolean;
}

/** Chooses the notebook's model (see the file comment). */
export async function selectPartAModel(opts: SelectOptions = {}): Promise<PartAModel> {
  const root = PROJECT_ROOT;
  const notes: string[] = [];
  const noIF = opts.noIF ?? setting('PARTA_MODEL') === 'mnist';
  if (!noIF) {
    try {
      const ifp = await import('../../lib/models/if/load.js');
      const r = ifp.loadIFFromDefaults(opts.ifRoot ?? modelsRoot());
      if ('den' in r) return { den: r.den, kind: 'if', why: `DeepFloyd IF stage I found: ${r.den.name}` };
      notes.push(r.missing);
    } catch (e) {
      notes.push(`IF not loaded: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
    }
  }
  const forced = opts.weightsFile ?? setting('PARTA_WEIGHTS');
  if (forced && !fs.existsSync(path.resolve(root, forced))) throw new Error(`PARTA_WEIGHTS: no such file ${forced}`);
  const file = forced ? path.resolve(root, forced) : findMnistClassWeights(opts.weightsDir ?? weightsDir());
  if (file) {
    const den = requireDDPM(loadMnistDenoiser(file), 'Part A (its cells use the noise schedule)');
    return { den, kind: 'mnist', why: `${notes.length ? notes.join('; ') + ' → ' : ''}using Part B's class-conditioned MNIST model ${path.relative(root, file)}` };
  }
  notes.push(`no Part B class weights in ${path.relative(root, opts.weightsDir ?? weightsDir()) || '.'}`);
  const allow = opts.allowUntrained ?? setting('PARTA_REQUIRE_WEIGHTS') !== '1';
  if (!allow) throw new Error(`Part A needs a model: ${notes.join('; ')} (train one with "npm run train -- --model class")`);
  const den = mnistDenoiser(new UNet({ kind: 'class', D: 16 }, 0), { name: 'UNTRAINED MNIST class UNet (D=16, random init; plumbing only)' });
  return { den, kind: 'untrained', why: `${notes.join('; ')} → an UNTRAINED class UNet (figures show noise, not digits)` };
}

/** The per-model choices of the Part A figures. */
export interface PartASettings {
  /** Seed of every figure (the spec: pick one, report it, use it everywhere). */
  seed: number;
  /** CFG scale γ from §1.7 on (7 for IF as the course; 5 for MNIST as Part B's Alg. B.4). */
  gamma: number;
  /** Test images: the first is this notebook's "Campanile". Files under data/partA or paths. */
  testImages: string[];
  /** §1.7.1: one outside (non-training-set) image and two drawings. */
  outsideImage: string;
  drawings: string[];
  /** §1.7.2: three (image, mask) pairs. */
  inpaint: Array<{ image: string; mask: string }>;
  /** §1.7.3: one prompt per test image. */
  translations: string[];
  /** §1.6 prompts (five samples). */
  cfgPrompts: string[];
  /** §1.8: [upright prompt, flipped prompt] ×3. */
  anagrams: Array<[string, string]>;
  /** §1.9: [low-pass (far) prompt, high-pass (near) prompt] ×3. */
  hybrids: Array<[string, string]>;
}

/** Settings for the chosen model. */
export function partASettings(m: PartAModel): PartASettings {
  const digits = { testImages: ['digit-7-test0.png', 'digit-2-test1.png', 'digit-4-test4.png'], outsideImage: 'outside-font-5.png', drawings: ['sketch-4.png', 'sketch-3.png'] };
  const masks = [
    { image: 'digit-7-test0.png', mask: 'mask-top.png' },
    { image: 'digit-2-test1.png', mask: 'mask-right.png' },
    { image: 'digit-4-test4.png', mask: 'mask-center.png' },
  ];
  if (m.kind === 'if') {
    const hasCampanile = fs.existsSync(path.join(PROJECT_ROOT, 'data', 'campanile.jpg'));
    const imgs = hasCampanile ? [path.join(PROJECT_ROOT, 'data', 'campanile.jpg'), ...digits.testImages.slice(1)] : digits.testImages;
    return {
      seed: 180,
      gamma: 7,
      ...digits,
      testImages: imgs,
      inpaint: masks.map((p, i) => ({ ...p, image: imgs[i] })),
      translations: ['a rocket ship', 'a photo of a dog', 'a pencil'],
      cfgPrompts: new Array(5).fill('a high quality photo'),
      anagrams: [
        ['an oil painting of an old man', 'an oil painting of people around a campfire'],
        ['an oil painting of a snowy mountain village', 'a photo of a dog'],
        ['a lithograph of a skull', 'a lithograph of waterfalls'],
      ],
      hybrids: [
        ['a lithograph of a skull', 'a lithograph of waterfalls'],
        ['a photo of a dog', 'a photo of a man'],
        ['an oil painting of an old man', 'an oil painting of a snowy mountain village'],
      ],
    };
  }
  return {
    seed: 180,
    gamma: 5,
    ...digits,
    inpaint: masks,
    translations: ['a handwritten 1', 'a handwritten 3', 'a handwritten 9'],
    cfgPrompts: ['a handwritten 0', 'a handwritten 2', 'a handwritten 4', 'a handwritten 6', 'a handwritten 8'],
    anagrams: [
      ['a handwritten 6', 'a handwritten 9'],
      ['a handwritten 7', 'a handwritten 4'],
      ['a handwritten 3', 'a handwritten 8'],
    ],
    hybrids: [
      ['a handwritten 0', 'a handwritten 1'],
      ['a handwritten 8', 'a handwritten 3'],
      ['a handwritten 9', 'a handwritten 4'],
    ],
  };
}
