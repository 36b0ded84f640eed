/**
 * Conv2DBackpropFilter for wasm (the stock backend has none, so training fails without it):
 * dW as one XNNPACK convolution of x^T ([Cin,H,W,N]) with dy^T ([Ho,Wo,N,Cout]) as the filter,
 * dilated by the forward stride.
 */
import { Conv2DBackpropFilter } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, Conv2DBackpropFilterInputs, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { backpropConvInfo, convExplicit, free, kernelFunc, transpose, type Backend, type Pads } from './util';

export const conv2DBackpropFilter = kernelFunc<Conv2DBackpropFilterInputs, Conv2DBackpropFilterAttrs>(({ inputs, backend, attrs }) => {
  const b = backend as Backend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const info = backpropConvInfo(Conv2DBackpropFilter, attrs, x.shape, attrs.filterShape);
  const [, h, w] = x.shape;
  const [, ho, wo] = dy.shape;
  const { top, left } = info.padInfo;
  const xt = transpose(b, x, [3, 1, 2, 0]);
  const dyt = transpose(b, dy, [1, 2, 0, 3]);
  const pads: Pads = {
    top,
    left,
    bottom: info.filterHeight - h - top + (ho - 1) * info.strideHeight,
    right: info.filterWidth - w - left + (wo - 1) * info.strideWidth,
  };
  const dwT = convExplicit(b, xt, dyt, [info.strideHeight, info.strideWidth], pads); // [Cin,fh,fw,Cout]
  const dw = transpose(b, dwT, [1, 2, 0, 3]);
  free(b, xt, dyt, dwT);
  return dw;
});

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};
