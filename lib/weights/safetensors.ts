/**
 * Safetensors reading and writing, streamed tensor by tensor (SPEC §3.6).
 *
 * Format: an 8-byte little-endian header length n, then n bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}, then the raw
 * little-endian tensor bytes; offsets are relative to the end of the header.
 *
 * A 1–5 GB model is never read whole: `SafetensorsFile` keeps only the parsed header and an open
 * file descriptor, and `read(name)` reads one tensor's bytes and converts them to float32. A
 * sharded model (`*.safetensors.index.json`, diffusers' and transformers' `weight_map`) is opened
 * as one `SafetensorsSource` over its shard files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unsafeRelativePath } from './download';

/** Dtypes we convert to float32. */
export type StDtype = 'F16' | 'BF16' | 'F32' | 'F64';

const DTYPE_BYTES: Record<StDtype, number> = { F16: 2, BF16: 2, F32: 4, F64: 8 };

/** One tensor's header entry, with offsets made absolute within its file. */
export interface StTensorInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Absolute byte offset of the first data byte in `file`. */
  begin: number;
  /** Absolute byte offset one past the last data byte. */
  end: number;
  /** The file holding it. */
  file: string;
}

/** A tensor converted to float32, in the file's (PyTorch) layout. */
export interface StTensor {
  shape: number[];
  data: Float32Array;
}

/** A readable set of tensors: one file or several shards. */
export interface SafetensorsSource {
  /** Every tensor's header entry, by name. */
  readonly tensors: ReadonlyMap<string, StTensorInfo>;
  /** The `__metadata__` of the (first) file. */
  readonly metadata: Record<string, string>;
  /** Reads and converts one tensor (one read of its bytes; nothing else is kept). */
  read(name: string): StTensor;
  /** Closes the file descriptors. */
  close(): void;
}

/** Largest header we accept (the real ones are well under 1 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

function fail(file: string, msg: string): never {
  throw new Error(`${path.basename(file)}: ${msg}`);
}

/**
 * Parses and validates a safetensors header. Throws one line naming the file and the problem:
 * too short / truncated, header length out of range, invalid JSON, unsupported dtype, bad shape,
 * offsets inconsistent with the shape or past the end of the file.
 */
export function readSafetensorsHeader(file: string, fd?: number): { tensors: Map<string, StTensorInfo>; metadata: Record<string, string>; fileSize: number } {
  const own = fd === undefined;
  const d = own ? openOrFail(file) : fd!;
  try {
    const fileSize = fs.fstatSync(d).size;
    if (fileSize < 8) fail(file, `file is ${fileSize} bytes, too short for a safetensors header (truncated download? run "npm run weights -- check DIR")`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(d, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n < 2 || n > MAX_HEADER) fail(file, `header length ${n} is out of range: not a safetensors file`);
    if (8 + n > fileSize) fail(file, `truncated: the header needs ${8 + n} bytes but the file has ${fileSize}`);
    const hbuf = Buffer.alloc(n);
    fs.readSync(d, hbuf, 0, n, 8);
    let json: unknown;
    try {
      json = JSON.parse(hbuf.toString('utf8').replace(/[ \0]+$/, ''));
    } catch (e) {
      fail(file, `header is not valid JSON (${(e as Error).message}): not a safetensors file`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'header is not a JSON object: not a safetensors file');
    const dataStart = 8 + n;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, StTensorInfo>();
    let metadata: Record<string, string> = {};
    let maxEnd = 0;
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (v ?? {}) as Record<string, string>;
        continue;
      }
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null) fail(file, `header entry "${name}" is not an object`);
      const dtype = e.dtype as StDtype;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
        fail(file, `tensor "${name}" has dtype ${JSON.stringify(e.dtype)}; supported: F16, BF16, F32, F64 (convert the checkpoint to fp16 or fp32)`);
      }
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) fail(file, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0) || off[1] < off[0]) {
        fail(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
      }
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      const bytes = numel * DTYPE_BYTES[dtype];
      if (off[1] - off[0] !== bytes) fail(file, `tensor "${name}": data_offsets span ${off[1] - off[0]} bytes but ${dtype} [${shape.join(',')}] needs ${bytes}`);
      maxEnd = Math.max(maxEnd, off[1]);
      tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + off[0], end: dataStart + off[1], file });
    }
    if (maxEnd > dataSize) {
      fail(file, `truncated: tensor data needs ${dataStart + maxEnd} bytes but the file has ${fileSize} (re-run the download; it resumes)`);
    }
    return { tensors, metadata, fileSize };
  } finally {
    if (own) fs.closeSync(d);
  }
}

function openOrFail(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot open (${code ?? (e as Error).message})`);
  }
}

/** IEEE half → float lookup-free conversion of one value. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float → IEEE half bits, round to nearest even (for the writer and tests). */
export function f32ToF16(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

let F16_TABLE: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) F16_TABLE[i] = f16ToF32(i);
  }
  return F16_TABLE;
}

/** Converts little-endian raw bytes of `dtype` to a new Float32Array. */
export function bytesToFloat32(buf: Uint8Array, dtype: StDtype, numel: number): Float32Array {
  const out = new Float32Array(numel);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < numel; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    case 'F16': {
      const t = f16Table();
      for (let i = 0; i < numel; i++) out[i] = t[dv.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/** One open .safetensors file. */
export class SafetensorsFile implements SafetensorsSource {
  readonly tensors: Map<string, StTensorInfo>;
  readonly metadata: Record<string, string>;
  readonly fileSize: number;
  private fd: number | undefined;

  constructor(readonly file: string) {
    this.fd = openOrFail(file);
    try {
      const h = readSafetensorsHeader(file, this.fd);
      this.tensors = h.tensors;
      this.metadata = h.metadata;
      this.fileSize = h.fileSize;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(name: string): StTensor {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`${path.basename(this.file)} has no tensor "${name}"`);
    if (this.fd === undefined) throw new Error(`${path.basename(this.file)} is closed`);
    return readInfo(this.fd, info);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

function readInfo(fd: number, info: StTensorInfo): StTensor {
  const n = info.end - info.begin;
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const r = fs.readSync(fd, buf, got, n - got, info.begin + got);
    if (r === 0) throw new Error(`${path.basename(info.file)}: truncated while reading tensor "${info.name}"`);
    got += r;
  }
  const numel = info.shape.reduce((a, b) => a * b, 1);
  return { shape: info.shape.slice(), data: bytesToFloat32(buf, info.dtype, numel) };
}

/** Several shards behind one `*.index.json` (`{"weight_map": {name: shardFile}}`). */
class ShardedSafetensors implements SafetensorsSource {
  readonly tensors = new Map<string, StTensorInfo>();
  readonly metadata: Record<string, string> = {};
  private files = new Map<string, SafetensorsFile>();

  constructor(indexFile: string) {
    let idx: { weight_map?: Record<string, string>; metadata?: Record<string, string> };
    try {
      idx = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
    } catch (e) {
      throw new Error(`${path.basename(indexFile)}: cannot read the shard index (${(e as Error).message})`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new Error(`${path.basename(indexFile)}: no "weight_map" in the shard index`);
    const dir = path.dirname(indexFile);
    try {
      for (const shard of new Set(Object.values(idx.weight_map))) {
        const f = new SafetensorsFile(shardPath(dir, shard, indexFile));
        this.files.set(shard, f);
        Object.assign(this.metadata, f.metadata);
      }
      for (const [name, shard] of Object.entries(idx.weight_map)) {
        const info = this.files.get(shard)!.tensors.get(name);
        if (!info) throw new Error(`${path.basename(indexFile)}: the index puts "${name}" in ${shard}, which does not contain it`);
        this.tensors.set(name, info);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(name: string): StTensor {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`sharded checkpoint has no tensor "${name}"`);
    const f = [...this.files.values()].find((x) => x.file === info.file)!;
    return f.read(name);
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}

/**
 * The file a shard index names, which must lie inside the index's folder (no absolute path, no
 * `..`, no symlink leading out): an index is never a way to read other files.
 */
function shardPath(dir: string, shard: unknown, indexFile: string): string {
  const refuse = (why: string) =>
    new Error(`${path.basename(indexFile)}: the shard index names ${JSON.stringify(shard)}, ${why}; refusing to read it (a shard must be a file beside the index)`);
  const why = unsafeRelativePath(shard);
  if (why) throw refuse(`which is not a path inside ${dir} (${why})`);
  const root = path.resolve(dir);
  const file = path.resolve(root, ...(shard as string).split('/'));
  if (!file.startsWith(root + path.sep)) throw refuse(`which resolves outside ${dir}`);
  if (fs.existsSync(file)) {
    const realRoot = fs.realpathSync(root);
    const real = fs.realpathSync(file);
    if (!real.startsWith(realRoot + path.sep)) throw refuse(`which a symlink leads outside ${dir} (to ${real})`);
  }
  return file;
}

/** Opens a `.safetensors` file or a sharded `*.index.json`. */
export function openSafetensors(file: string): SafetensorsSource {
  if (file.endsWith('.json')) return new ShardedSafetensors(file);
  return new SafetensorsFile(file);
}

/** A tensor to write, given in float32 and stored as `dtype`. */
export interface StWriteTensor {
  name: string;
  shape: number[];
  data: Float32Array | number[];
  dtype?: 'F16' | 'F32' | 'BF16';
}

/** Serializes tensors to safetensors bytes (tests, fixtures, small embedding files). */
export function encodeSafetensors(tensors: StWriteTensor[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  const parts: Buffer[] = [];
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel) throw new Error(`tensor "${t.name}": ${t.data.length} values for shape [${t.shape.join(',')}]`);
    const b = Buffer.alloc(numel * DTYPE_BYTES[dtype]);
    for (let i = 0; i < numel; i++) {
      const v = t.data[i];
      if (dtype === 'F32') b.writeFloatLE(v, 4 * i);
      else if (dtype === 'F16') b.writeUInt16LE(f32ToF16(v), 2 * i);
      else b.writeUInt16LE(new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16, 2 * i);
    }
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + b.length] };
    off += b.length;
    parts.push(b);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // the reference writer pads the header with spaces to 8 bytes
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...parts]);
}

/** Writes a safetensors file atomically (temp file, then rename). */
export function writeSafetensors(file: string, tensors: StWriteTensor[], metadata?: Record<string, string>): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, encodeSafetensors(tensors, metadata));
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// PyTorch → TF.js layout, and strict name/shape matching.

/** How a parameter's PyTorch layout maps to TF.js. */
export type ParamKind = 'conv' | 'linear' | 'vector' | 'raw';

/** An expected parameter: its diffusers state_dict name and PyTorch shape. */
export interface ParamSpec {
  name: string;
  /** Shape in the checkpoint (PyTorch layout: conv [O,I,kH,kW], Linear [out,in]). */
  shape: number[];
  kind: ParamKind;
}

/** The TF.js shape of a parameter: conv OIHW → HWIO, Linear [out,in] → [in,out]. */
export function tfShape(spec: { shape: number[]; kind: ParamKind }): number[] {
  const s = spec.shape;
  if (spec.kind === 'conv') return [s[2], s[3], s[1], s[0]];
  if (spec.kind === 'linear') return [s[1], s[0]];
  return s.slice();
}

/**
 * Reorders PyTorch-layout data to TF.js layout: conv [O,I,kH,kW] → [kH,kW,I,O] and Linear
 * [out,in] → [in,out]; vectors and raw tensors are unchanged. Returns new data (or the input).
 */
export function torchToTfLayout(data: Float32Array, shape: number[], kind: ParamKind): Float32Array {
  if (kind === 'conv') {
    const [O, I, H, W] = shape;
    const out = new Float32Array(data.length);
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++) out[((h * W + w) * I + i) * O + o] = data[((o * I + i) * H + h) * W + w];
    return out;
  }
  if (kind === 'linear') {
    const [O, I] = shape;
    const out = new Float32Array(data.length);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) out[i * O + o] = data[o * I + i];
    return out;
  }
  return data;
}

/** The result of matching a checkpoint against the expected parameters. */
export interface KeyReport {
  missing: string[];
  unexpected: string[];
  misshaped: { name: string; expected: number[]; found: number[] }[];
  ok: boolean;
}

/** Compares expected names and shapes with a checkpoint's header. */
export function matchKeys(specs: readonly ParamSpec[], tensors: ReadonlyMap<string, { shape: number[] }>): KeyReport {
  const missing: string[] = [];
  const misshaped: KeyReport['misshaped'] = [];
  const want = new Set<string>();
  for (const s of specs) {
    want.add(s.name);
    const t = tensors.get(s.name);
    if (!t) missing.push(s.name);
    else if (t.shape.length !== s.shape.length || t.shape.some((v, i) => v !== s.shape[i])) misshaped.push({ name: s.name, expected: s.shape, found: t.shape });
  }
  const unexpected = [...tensors.keys()].filter((k) => !want.has(k));
  return { missing, unexpected, misshaped, ok: !missing.length && !unexpected.length && !misshaped.length };
}

/** A readable multi-line report; the first line is a summary that fits an error message. */
export function formatKeyReport(r: KeyReport, what = 'checkpoint', limit = 10): string {
  if (r.ok) return `${what}: all parameter names and shapes match`;
  const parts = [
    `${what} does not match the model config: ${r.missing.length} missing, ${r.unexpected.length} unexpected, ${r.misshaped.length} misshaped tensor(s) (is config.json from the same model as the weights?)`,
  ];
  const list = (title: string, xs: string[]) => {
    if (!xs.length) return;
    parts.push(`  ${title}:`);
    for (const x of xs.slice(0, limit)) parts.push(`    ${x}`);
    if (xs.length > limit) parts.push(`    … and ${xs.length - limit} more`);
  };
  list('missing', r.missing);
  list('unexpected', r.unexpected);
  list('misshaped', r.misshaped.map((m) => `${m.name}: expected [${m.expected.join(',')}], found [${m.found.join(',')}]`));
  return parts.join('\n');
}
