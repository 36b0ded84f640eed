/**
 * The Part A notebook's figure captions, built here so the cells show the algorithm and not the
 * strings. Each function returns the caption under one figure (tile captions stay in the cells).
 */
import { ddpmScheduleOf, type Denoiser } from '../../lib/models/denoiser';
import type { PartASettings } from './partAModel';

/** What every caption mentions: the model, the seed, the strided schedule. */
export interface CaptionContext {
  den: Denoiser;
  S: PartASettings;
  /** The strided timesteps. */
  ts: number[];
}

const about = (c: CaptionContext) => `${c.den.name}; seed ${c.S.seed}`;
/** "a handwritten 7" → "7" for tile captions. */
export const short = (p: string): string => p.replace(/^a handwritten /, '');

export function forward(c: CaptionContext, levels: number[]): string {
  return `The test image noised to t = ${levels.join(', ')} of T = ${ddpmScheduleOf(c.den, 'the forward-process caption').T} (the course's 250/500/750 of 1000), each with its own ε (seed ${c.S.seed}+i). ${about(c)}.`;
}

export function blur(c: CaptionContext, levels: number[], best: Array<{ blur: { sigma: number; kernelSize: number } }>): string {
  return (
    `Top: noisy at t = ${levels.join(', ')}; bottom: the best Gaussian blur of each (σ ∈ 0.5, 1, 1.5, 2, 3 px, kernel 2⌈2σ⌉+1, lowest MSE to the original): ` +
    `${best.map((b) => `σ = ${b.blur.sigma}, kernel ${b.blur.kernelSize}`).join('; ')}. ${about(c)}.`
  );
}

export function oneStep(c: CaptionContext): string {
  return `Rows: t = the three levels above. Columns: the original, the noisy image, x̂₀ from one model call under "${c.den.neutralPrompt}". ${about(c)}.`;
}

export function loop(c: CaptionContext, iStart: number): string {
  return `Noised to t = ${c.ts[iStart]} (i_start = ${iStart}), then denoised over the strided steps ${c.ts.slice(iStart).join(', ')}; prompt "${c.den.neutralPrompt}". ${about(c)}.`;
}

export function compare(c: CaptionContext, iStart: number): string {
  return `All from the same noisy image at t = ${c.ts[iStart]}: the loop recovers detail that one step and the blur cannot. ${about(c)}.`;
}

export function samples(c: CaptionContext): string {
  return `Prompt "${c.den.neutralPrompt}", ${c.ts.length - 1} strided steps from pure noise, no CFG. ${about(c)}.`;
}

export function cfg(c: CaptionContext): string {
  return `Classifier-free guidance against the empty prompt, γ = ${c.S.gamma}; sample i uses seed ${c.S.seed}+i. ${about(c)}.`;
}

export function sdedit(c: CaptionContext, note: string, iStarts: readonly number[]): string {
  return `${note} Columns: i_start = ${iStarts.join(', ')} (t = ${iStarts.map((i) => c.ts[i]).join(', ')}), then the input. γ = ${c.S.gamma}; level i_start uses seed ${c.S.seed}+i_start. ${about(c)}.`;
}

export function inpaint(c: CaptionContext): string {
  return `Rows: ${c.S.inpaint.map((p) => `${p.image} with ${p.mask}`).join('; ')}; mask white = generate, black = keep. Prompt "${c.den.neutralPrompt}", γ = ${c.S.gamma}; row k uses seed ${c.S.seed}+k. ${about(c)}.`;
}

export function anagrams(c: CaptionContext): string {
  return `Left upright, right flipped upside down. Rows (upright / flipped): ${c.S.anagrams.map(([a, b]) => `"${a}" / "${b}"`).join('; ')}. γ = ${c.S.gamma}; anagram k uses seed ${c.S.seed}+k. ${about(c)}.`;
}

export function hybrids(c: CaptionContext, blurInfo: { kernelSize: number; sigma: number }): string {
  return (
    `Left: low-passed (kernel ${blurInfo.kernelSize}, σ = ${blurInfo.sigma.toFixed(3)}), as seen from afar; right: the hybrid at full size. ` +
    `Rows (far / near): ${c.S.hybrids.map(([a, b]) => `"${a}" / "${b}"`).join('; ')}. γ = ${c.S.gamma}; hybrid k uses seed ${c.S.seed}+k. ${about(c)}.`
  );
}
