/** Tiny IF-structured UNet configs and random parameters for the tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { planUnet } from '../../lib/models/if/unet';
import type { ParamSpec } from '../../lib/weights/safetensors';
import { f16ToF32, f32ToF16, tfShape, torchToTfLayout, writeSafetensors } from '../../lib/weights/safetensors';
import { mulberry32 } from '../helpers';
import type { RefParams } from './reference';

/** Stage I structure (IF-I: Resnet down, SimpleCrossAttn deeper), tiny widths. */
export const tinyStageI = {
  _class_name: 'UNet2DConditionModel',
  act_fn: 'gelu',
  addition_embed_type: 'text',
  addition_embed_type_num_heads: 4,
  attention_head_dim: 8,
  block_out_channels: [32, 64],
  class_embed_type: null,
  cross_attention_dim: 32,
  cross_attention_norm: 'group_norm',
  down_block_types: ['ResnetDownsampleBlock2D', 'SimpleCrossAttnDownBlock2D'],
  encoder_hid_dim: 16,
  encoder_hid_dim_type: 'text_proj',
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 3,
  layers_per_block: 1,
  mid_block_scale_factor: 1,
  mid_block_type: 'UNetMidBlock2DSimpleCrossAttn',
  norm_eps: 1e-5,
  norm_num_groups: 8,
  only_cross_attention: false,
  out_channels: 6,
  resnet_out_scale_factor: 1.0,
  resnet_skip_time_act: false,
  resnet_time_scale_shift: 'scale_shift',
  sample_size: 8,
  time_embedding_dim: null,
  time_embedding_type: 'positional',
  up_block_types: ['SimpleCrossAttnUpBlock2D', 'ResnetUpsampleBlock2D'],
};

/** Stage II structure (6 input channels, noise-level class embedding, skip_time_act, √2 scales). */
export const tinyStageII = {
  ...tinyStageI,
  block_out_channels: [32, 32, 64],
  layers_per_block: [1, 2, 1],
  down_block_types: ['ResnetDownsampleBlock2D', 'ResnetDownsampleBlock2D', 'SimpleCrossAttnDownBlock2D'],
  up_block_types: ['SimpleCrossAttnUpBlock2D', 'ResnetUpsampleBlock2D', 'ResnetUpsampleBlock2D'],
  in_channels: 6,
  class_embed_type: 'timestep',
  resnet_skip_time_act: true,
  resnet_out_scale_factor: 1.4142271,
  mid_block_scale_factor: 1.4142271,
  time_embedding_act_fn: 'gelu',
  time_embedding_dim: 64,
  sample_size: 8,
};

/**
 * Random parameters for the specs, in PyTorch layout: weights U(−1,1)/√fan_in, norm scales
 * 1 ± 0.2, biases ±0.1. With `fp16`, values are rounded through half precision so the
 * reference sees exactly what an F16 file stores.
 */
export function randomParams(specs: readonly ParamSpec[], seed: number, fp16 = false): RefParams {
  const r = mulberry32(seed);
  const P: RefParams = new Map();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const d = new Float64Array(n);
    const isNormW = /(norm[^.]*|norm_cross|group_norm)\.weight$/.test(s.name);
    const fanIn = s.kind === 'conv' ? s.shape[1] * s.shape[2] * s.shape[3] : s.kind === 'linear' ? s.shape[1] : 1;
    for (let i = 0; i < n; i++) {
      const u = r() * 2 - 1;
      let v =
        s.kind === 'conv' || s.kind === 'linear' ? u / Math.sqrt(fanIn) : isNormW ? 1 + 0.2 * u : s.kind === 'raw' ? u * 0.5 : 0.1 * u;
      if (fp16) v = f16ToF32(f32ToF16(v));
      else v = Math.fround(v);
      d[i] = v;
    }
    P.set(s.name, { shape: s.shape, data: d });
  }
  return P;
}

/** Writes parameters as a diffusers-named safetensors file. */
export function writeParams(file: string, P: RefParams, dtype: 'F16' | 'F32' = 'F16'): void {
  writeSafetensors(
    file,
    [...P].map(([name, t]) => ({ name, shape: t.shape, data: Float32Array.from(t.data), dtype })),
    { format: 'pt' },
  );
}

/** Converts reference params to a TF.js Weights map directly (no file). */
export function toWeights(specs: readonly ParamSpec[], P: RefParams): Map<string, tf.Tensor> {
  const w = new Map<string, tf.Tensor>();
  for (const s of specs) w.set(s.name, tf.tensor(torchToTfLayout(Float32Array.from(P.get(s.name)!.data), s.shape, s.kind), tfShape(s)));
  return w;
}

/** Random float64 array in [-a, a]. */
export function randArray(n: number, seed: number, a = 1): Float64Array {
  const r = mulberry32(seed);
  return Float64Array.from({ length: n }, () => Math.fround((r() * 2 - 1) * a));
}

/** max |x − y| / max |y|. */
export function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    num = Math.max(num, Math.abs(x[i] - y[i]));
    den = Math.max(den, Math.abs(y[i]));
  }
  return num / (den || 1);
}

/** Writes a tiny model folder in the Hugging Face layout (unet/config.json + fp16 safetensors). */
export function writeTinyModel(dir: string, cfg: Record<string, unknown>, seed: number): string {
  fs.mkdirSync(path.join(dir, 'unet'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'unet', 'config.json'), JSON.stringify(cfg, null, 2));
  const unet = planUnet(cfg);
  const file = path.join(dir, 'unet', 'diffusion_pytorch_model.fp16.safetensors');
  writeParams(file, randomParams(unet.specs, seed, true), 'F16');
  return file;
}
