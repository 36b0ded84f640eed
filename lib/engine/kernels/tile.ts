/** Tile for wasm as one memcpy-speed Concat per repeated axis (the stock kernel is a scalar index loop). */
import { Concat, Identity, Tile } from '@tensorflow/tfjs-core';
import type { ConcatAttrs, KernelConfig, TensorInfo, TileAttrs, TileInputs } from '@tensorflow/tfjs-core';
import { free, kernelFunc, run, type Backend } from './util';

export const tile = kernelFunc<TileInputs, TileAttrs>(({ inputs, backend, attrs }) => {
  const b = backend as Backend;
  const { x } = inputs as { x: TensorInfo };
  const { reps } = attrs;
  let cur = x;
  reps.forEach((r, axis) => {
    if (r === 1) return;
    const next = run(b, Concat, Array.from({ length: r }, () => cur) as never, { axis } satisfies ConcatAttrs);
    if (cur !== x) free(b, cur);
    cur = next;
  });
  // Kernels must return a fresh tensor; an all-ones reps still needs a copy.
  return cur === x ? run(b, Identity, { x }) : cur;
});

export const tileConfig: KernelConfig = { kernelName: Tile, backendName: 'wasm', kernelFunc: tile };
