/**
 * The engine's performance levers: one typed record of switches between a fast path and the
 * plain path it replaces. Every fast path is tested against its plain path (or an independent
 * reference); the switches exist for those tests and for in-process A/B timing (bench/ab.ts).
 *
 * Read them with `levers().exactPhases`; change them for a scope with
 * `withLevers({ foldBatchNorm: false }, () => ...)`, which always restores the previous ones, so
 * that nothing leaks between tests or benchmark variants. `initEngine({ levers })` sets the
 * process-wide starting values. This module is at the bottom of the import order (lib/tensor and
 * lib/models read it; it imports nothing).
 */

/** One switch per fast path; `true` = the fast path (the default for all of them). */
export interface Levers {
  /** wasm Conv2DBackpropInput (and so conv2dTranspose) as stride-phase sub-convolutions: no multiply touches an inserted zero (3/4 of the work at stride 2); off = convolution of the zero-inserted dy. */
  phases: boolean;
  /** With `phases`: when the input side is a multiple of the stride, each phase covers exactly the output (no final Slice); off = the general window, then a crop. */
  exactPhases: boolean;
  /** wasm Conv2DBackpropInput for a single-pixel dy covering the filter window (the UNet's Unflatten, 1×1 → 7×7) as one GEMM, not a convolution that is 49× padding zeros. */
  singlePixel: boolean;
  /** wasm Identity and same-dtype Cast as new references to the same memory instead of copies (the engine clones every tensor it saves for the backward pass). */
  zeroCopy: boolean;
  /** wasm float32 Sum/Mean over leading axes (bias gradients, the loss) as one contiguous JS pass with float64 accumulators, instead of transpose + single-threaded reduce. */
  reduce: boolean;
  /** wasm float32 Concat/SplitV as JS copy loops: the stock kernels pay one call per short channel chunk (the UNet's skip concatenations). */
  copyLoops: boolean;
  /** Training BatchNorm statistics in one shifted float64 pass and its gradient in two passes (fewer operations per element) instead of the two-pass / three-pass kernels (wasm and cpu). */
  bnFast: boolean;
  /** Adam as one JS pass per parameter (float64 arithmetic) instead of 13 element-wise kernels (wasm and cpu). */
  fusedAdam: boolean;
  /** GELU's hand-written gradient from saved x/√2 and Φ(x) (7 kernels) instead of autodiff of the erf composite (10). */
  geluGrad: boolean;
  /** Eval-mode UNet forward with each BatchNorm folded into its convolution (weights W·a, shift (b−μ)·a+β, computed once and reused until a weight or running statistic changes): saves the BN pass and the bias add. */
  foldBatchNorm: boolean;
  /** The UNet convolutions' bias add fused into the convolution kernel instead of a separate add. */
  fusedBias: boolean;
  /** With the addon loaded, a training-mode conv → BatchNorm → GELU as the conv without its bias, then one fused BN+GELU kernel (the bias taken there, its gradient from the BN gradient's second pass) instead of separate BN and GELU kernels and a bias-gradient reduction. */
  fusedBnGelu: boolean;
  /** With the addon loaded, an eval-mode conv → folded BatchNorm → GELU as one oneDNN convolution with bias and a GELU post-op, instead of the convolution and a separate GELU pass (not while gradients are recorded: the fused kernel has none). */
  fusedConvGelu: boolean;
  /** The native addon's kernels when it is loaded (lib/engine/native.ts): convolutions (forward, both gradients, conv2dTranspose) in oneDNN, GELU and training BatchNorm in vectorized C++; off = the wasm or cpu kernels and the JS passes. */
  native: boolean;
  /** With bf16 convolutions (setNativePrecision('bf16')), the bf16 copy of a training convolution's input made for the forward pass, and of dy made for the data gradient, kept by the addon and reused by the filter gradient instead of converted again (each released when its tensor is freed). */
  keepBf16: boolean;
  /** With the addon loaded, Adam updates every parameter in one kernel (the addon's adamMany: one pass over all values, PyTorch's multi-tensor Adam) instead of one kernel per parameter. */
  adamMany: boolean;
}

/** Every lever on: the engine as it runs by default. */
export const DEFAULT_LEVERS: Readonly<Levers> = Object.freeze({
  phases: true,
  exactPhases: true,
  singlePixel: true,
  zeroCopy: true,
  reduce: true,
  copyLoops: true,
  bnFast: true,
  fusedAdam: true,
  geluGrad: true,
  foldBatchNorm: true,
  fusedBias: true,
  fusedBnGelu: true,
  fusedConvGelu: true,
  native: true,
  keepBf16: true,
  adamMany: true,
});

/** The names of the levers, in declaration order. */
export const LEVER_NAMES = Object.keys(DEFAULT_LEVERS) as Array<keyof Levers>;

let current: Readonly<Levers> = DEFAULT_LEVERS;

/** The levers in force now (a frozen record: change them with withLevers). */
export function levers(): Readonly<Levers> {
  return current;
}

/** `current` with `partial` applied; throws on an unknown lever name or a non-boolean value. */
function merged(partial: Partial<Levers>): Readonly<Levers> {
  for (const [name, value] of Object.entries(partial)) {
    if (!(LEVER_NAMES as string[]).includes(name)) throw new Error(`unknown lever "${name}": use one of ${LEVER_NAMES.join(', ')}`);
    if (value !== undefined && typeof value !== 'boolean') throw new Error(`lever ${name} must be true or false, got ${String(value)}`);
  }
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return Object.freeze({ ...current, ...defined });
}

/**
 * Sets levers process-wide, with no restore (initEngine's `levers` option). Prefer withLevers;
 * a withLevers scope that is open when this runs restores its own saved levers when it ends.
 */
export function setLevers(partial: Partial<Levers>): void {
  current = merged(partial);
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === 'function';
}

/**
 * Runs fn with `partial` applied over the current levers and restores the previous levers when
 * fn returns or throws. When fn returns a promise, the levers stay set until it settles and the
 * promise is returned (await it); other code that runs meanwhile sees them too, so do not
 * overlap two async withLevers scopes.
 */
export function withLevers<T>(partial: Partial<Levers>, fn: () => T): T {
  const saved = current;
  current = merged(partial);
  let pending = false;
  try {
    const result = fn();
    if (isPromiseLike(result)) {
      pending = true;
      return Promise.resolve(result).finally(() => {
        current = saved;
      }) as T;
    }
    return result;
  } finally {
    if (!pending) current = saved;
  }
}
