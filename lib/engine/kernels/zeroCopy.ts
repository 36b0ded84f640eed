/**
 * Identity and same-dtype Cast for wasm as new references to the same memory (as the cpu backend
 * does), instead of the stock copy (lever zeroCopy). TF.js tensors are immutable, and the engine
 * clones (Identity) every tensor it saves for the backward pass: ~680 copies per Part B training
 * step, all of them free this way; every Multiply gradient casts its other input to its own dtype.
 */
import { Cast, Identity } from '@tensorflow/tfjs-core';
import type { CastAttrs, CastInputs, IdentityInputs, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { levers } from '../levers';
import { kernelFunc, stock, type RefBackend } from './util';

export const identity = kernelFunc<IdentityInputs, Record<string, never>>(({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  if (!levers().zeroCopy || x.dtype === 'string') return stock(Identity)({ inputs, backend, attrs: {} }) as TensorInfo;
  (backend as RefBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
});

export const cast = kernelFunc<CastInputs, CastAttrs>(({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { dtype } = attrs;
  if (!levers().zeroCopy || dtype !== x.dtype || x.dtype === 'string')
    return stock(Cast)({ inputs, backend, attrs: attrs as never }) as TensorInfo;
  (backend as RefBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
});

export const identityConfig: KernelConfig = { kernelName: Identity, backendName: 'wasm', kernelFunc: identity };
export const castConfig: KernelConfig = { kernelName: Cast, backendName: 'wasm', kernelFunc: cast };
