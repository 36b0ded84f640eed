/**
 * Precomputed T5 prompt embeddings for IF (SPEC §1.0b, §3.4): one [77, 4096] matrix per prompt
 * (stored as [1,77,4096] in the course's file). Loaded from
 *  - the course's `prompt_embeds_dict.pth` (torch.save of {prompt: tensor}), read by
 *    lib/weights/torchPickle.ts — no Python needed;
 *  - `.safetensors`: one tensor per prompt named by the prompt, or one [N,77,D] tensor with the
 *    prompts as a JSON list in the metadata field "prompts";
 *  - `.npy`: one [N,77,D] array, with the prompts in a sibling `<file>.prompts.json` list.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from './safetensors';
import { readTorchZip, TorchTensor } from './torchPickle';
import { bytesToFloat32, StDtype } from './safetensors';

/** Embeddings by prompt; every matrix is [seqLen, dim] float32. */
export interface PromptEmbeddings {
  seqLen: number;
  dim: number;
  byPrompt: Map<string, Float32Array>;
}

function collect(entries: [string, number[], Float32Array][], file: string): PromptEmbeddings {
  if (!entries.length) throw new Error(`${path.basename(file)}: no prompt embeddings found`);
  const byPrompt = new Map<string, Float32Array>();
  let seq = -1;
  let dim = -1;
  for (const [prompt, shape, data] of entries) {
    const s = shape.length === 3 && shape[0] === 1 ? shape.slice(1) : shape;
    if (s.length !== 2) throw new Error(`${path.basename(file)}: embedding for ${JSON.stringify(prompt)} has shape [${shape.join(',')}]; expected [1,77,4096] or [77,4096]`);
    if (seq < 0) [seq, dim] = s;
    else if (s[0] !== seq || s[1] !== dim) throw new Error(`${path.basename(file)}: embedding for ${JSON.stringify(prompt)} is [${s.join(',')}] but the others are [${seq},${dim}]`);
    byPrompt.set(prompt, data);
  }
  return { seqLen: seq, dim, byPrompt };
}

/** Parses a .npy file (v1–v3, little-endian f2/f4/f8, C order). */
export function readNpy(buf: Uint8Array, what = 'file.npy'): { shape: number[]; data: Float32Array } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || magic.some((m, i) => buf[i] !== m)) throw new Error(`${what}: not a .npy file (bad magic)`);
  const major = buf[6];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > buf.length) throw new Error(`${what}: truncated .npy header`);
  const header = new TextDecoder().decode(buf.subarray(hstart, hstart + hlen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeStr === undefined) throw new Error(`${what}: unreadable .npy header ${header.trim()}`);
  if (fortran === 'True') throw new Error(`${what}: Fortran-order arrays are not supported; save with np.ascontiguousarray`);
  const dtypes: Record<string, StDtype> = { '<f2': 'F16', '<f4': 'F32', '<f8': 'F64' };
  const dtype = dtypes[descr];
  if (!dtype) throw new Error(`${what}: dtype ${descr} is not supported; use float16 or float32 (little-endian)`);
  const shape = shapeStr.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const numel = shape.reduce((a, b) => a * b, 1);
  const bpe = dtype === 'F16' ? 2 : dtype === 'F32' ? 4 : 8;
  const start = hstart + hlen;
  if (buf.length - start < numel * bpe) throw new Error(`${what}: truncated: ${numel * bpe} data bytes expected, ${buf.length - start} found`);
  return { shape, data: bytesToFloat32(buf.subarray(start, start + numel * bpe), dtype, numel) };
}

/** Writes a float32 .npy (v1) — for tests and exports. */
export function encodeNpy(shape: number[], data: Float32Array): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

function splitRows(prompts: string[], shape: number[], data: Float32Array, file: string): [string, number[], Float32Array][] {
  if (shape.length !== 3 || shape[0] !== prompts.length) {
    throw new Error(`${path.basename(file)}: array is [${shape.join(',')}] but ${prompts.length} prompts are listed; expected [${prompts.length},77,4096]`);
  }
  const n = shape[1] * shape[2];
  return prompts.map((p, i) => [p, shape.slice(1), data.slice(i * n, (i + 1) * n)]);
}

/**
 * Loads prompt embeddings from .pth, .safetensors or .npy (see the file comment).
 * @param opts.prompts the prompts of an .npy / stacked safetensors array, in row order
 *   (otherwise read from `<file>.prompts.json` or the safetensors metadata)
 */
export function loadPromptEmbeddings(file: string, opts: { prompts?: string[] } = {}): PromptEmbeddings {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: download the course's prompt_embeds_dict.pth (SPEC §1.0b) or point to your own .safetensors/.npy embeddings`);
  }
  const ext = path.extname(file).toLowerCase();
  const name = path.basename(file);
  if (ext === '.pth' || ext === '.pt') {
    const obj = readTorchZip(fs.readFileSync(file), name);
    if (!(obj instanceof Map)) throw new Error(`${name}: expected a dict {prompt: tensor}, found ${typeof obj}`);
    const entries: [string, number[], Float32Array][] = [];
    for (const [k, v] of obj) {
      const t = v as TorchTensor;
      if (typeof k !== 'string' || !t || t.kind !== 'tensor') throw new Error(`${name}: entry ${JSON.stringify(k)} is not a prompt → tensor pair`);
      entries.push([k, t.shape, t.data]);
    }
    return collect(entries, file);
  }
  if (ext === '.safetensors') {
    const src = openSafetensors(file);
    try {
      const listed = opts.prompts ?? (src.metadata.prompts ? (JSON.parse(src.metadata.prompts) as string[]) : undefined);
      if (listed && src.tensors.size === 1) {
        const t = src.read([...src.tensors.keys()][0]);
        return collect(splitRows(listed, t.shape, t.data, file), file);
      }
      return collect([...src.tensors.keys()].map((k) => {
        const t = src.read(k);
        return [k, t.shape, t.data] as [string, number[], Float32Array];
      }), file);
    } finally {
      src.close();
    }
  }
  if (ext === '.npy') {
    const arr = readNpy(fs.readFileSync(file), name);
    let prompts = opts.prompts;
    const side = `${file}.prompts.json`;
    if (!prompts && fs.existsSync(side)) prompts = JSON.parse(fs.readFileSync(side, 'utf8'));
    if (!prompts) throw new Error(`${name}: an .npy array has no prompt names: put them, in row order, as a JSON list in ${path.basename(side)}`);
    return collect(splitRows(prompts, arr.shape, arr.data, file), file);
  }
  throw new Error(`${name}: unsupported embeddings format ${ext || '(none)'}; use .pth (the course's file), .safetensors or .npy`);
}
