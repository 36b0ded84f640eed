/**
 * A reader (and a small writer, for tests) of PyTorch's `torch.save` zip format, enough for the
 * course's `prompt_embeds_dict.pth` (SPEC §1.0b): a zip archive `<stem>/data.pkl` (a pickle of
 * a dict of tensors), `<stem>/data/<key>` (each storage's raw little-endian bytes),
 * `<stem>/version`, `<stem>/byteorder`.
 *
 * The pickle is run by a minimal stack machine that knows the opcodes torch.save emits
 * (protocol 2, plus the protocol 4/5 ones newer Pythons may use). Only `torch._utils`
 * rebuild functions, storage types and `collections.OrderedDict` are resolved; any other global
 * is refused, so a .pth file cannot run code here (unlike Python's pickle).
 *
 * Sizes are checked before memory is taken: only data.pkl and the storages the pickle references
 * are inflated, each zip entry's declared size must be within MAX_ENTRY_BYTES and equal what it
 * inflates to, each storage is converted once however many views share it, and a view must have
 * non-negative offset and strides (as torch requires), stay inside its storage and have at most
 * MAX_TENSOR_ELEMENTS elements. The storages of a file together stay within MAX_ENTRY_BYTES, and its
 * views together within MAX_TENSOR_ELEMENTS, so many of them cannot multiply the memory taken.
 */
import * as zlib from 'node:zlib';
import { zipSync, type Zippable } from 'fflate';
import { bytesToFloat32, f32ToF16, StDtype } from './safetensors';

/** Largest zip entry (declared size) the reader inflates: the course's file has entries of about 1 MB. */
export const MAX_ENTRY_BYTES = 1024 * 1024 * 1024;
/** Largest tensor (elements) a view may materialize, and all the views of a file together: stride-0 views cannot ask for more. */
export const MAX_TENSOR_ELEMENTS = 2 ** 27;

/** A tensor read from a .pth file, contiguous, converted to float32. */
export interface TorchTensor {
  kind: 'tensor';
  shape: number[];
  data: Float32Array;
  /** The storage dtype in the file. */
  dtype: StDtype;
}

const STORAGE_DTYPES: Record<string, StDtype> = { HalfStorage: 'F16', FloatStorage: 'F32', BFloat16Storage: 'BF16', DoubleStorage: 'F64' };

interface Global {
  kind: 'global';
  module: string;
  name: string;
}
interface StorageRef {
  kind: 'storage';
  dtype: StDtype;
  key: string;
  numel: number;
}
const MARK = Symbol('mark');

class PickleError extends Error {}

/**
 * Unpickles `data` (the bytes of data.pkl); storages are resolved with `loadStorage(key)` (the
 * raw bytes of `data/<key>`).
 */
export function unpickleTorch(data: Uint8Array, loadStorage: (key: string) => Uint8Array, what = 'data.pkl'): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const dec = new TextDecoder();
  let pos = 0;
  const fail = (msg: string): never => {
    throw new PickleError(`${what}: ${msg} at byte ${pos} (not a torch.save file this reader understands)`);
  };
  const need = (n: number) => {
    if (pos + n > data.length) fail('unexpected end of pickle');
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const bytes = (n: number) => (need(n), (pos += n), data.subarray(pos - n, pos));
  const line = () => {
    const end = data.indexOf(10, pos);
    if (end < 0) fail('unterminated line');
    const s = dec.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('MARK not found');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => (stack.length ? stack[stack.length - 1] : fail('stack underflow'));
  const pop = () => (stack.length ? stack.pop() : fail('stack underflow'));
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const global = (module: string, name: string): Global => {
    const ok =
      (module === 'torch._utils' && (name === '_rebuild_tensor_v2' || name === '_rebuild_tensor' || name === '_rebuild_parameter')) ||
      (module === 'torch' && name in STORAGE_DTYPES) ||
      (module === 'collections' && name === 'OrderedDict') ||
      (module === 'builtins' && name === 'dict');
    if (!ok) fail(`refusing to load global ${module}.${name}`);
    return { kind: 'global', module, name };
  };
  // Each storage converted once, however many tensors view it.
  const storages = new Map<string, Float32Array>();
  let storageBytes = 0;
  let viewElements = 0;
  const storage = (st: StorageRef): Float32Array => {
    let all = storages.get(st.key);
    if (all) return all;
    const bpe = st.dtype === 'F64' ? 8 : st.dtype === 'F32' ? 4 : 2;
    if (!Number.isSafeInteger(st.numel) || st.numel < 0) fail(`storage ${st.key} declares ${st.numel} elements`);
    if (st.numel * bpe > MAX_ENTRY_BYTES) fail(`storage ${st.key} declares ${st.numel * bpe} bytes, more than the limit of ${MAX_ENTRY_BYTES}`);
    storageBytes += st.numel * bpe;
    if (storageBytes > MAX_ENTRY_BYTES) fail(`storages total ${storageBytes} bytes with storage ${st.key}, more than the limit of ${MAX_ENTRY_BYTES} for one file`);
    const raw = loadStorage(st.key);
    if (raw.length < st.numel * bpe) fail(`storage ${st.key} has ${raw.length} bytes, expected ${st.numel * bpe} (truncated file?)`);
    all = bytesToFloat32(raw, st.dtype, st.numel);
    storages.set(st.key, all);
    return all;
  };
  const call = (fn: unknown, args: unknown): unknown => {
    const g = fn as Global;
    const a = args as unknown[];
    if (!g || g.kind !== 'global' || !Array.isArray(a)) fail('REDUCE on something that is not a known function');
    if (g.name === 'OrderedDict' || g.name === 'dict') return new Map();
    if (g.name === '_rebuild_parameter') return a[0];
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const [st, offset, size, stride] = a as [StorageRef, number, number[], number[]];
    if (!st || st.kind !== 'storage') fail('tensor without a storage');
    const whole = (v: unknown) => Number.isSafeInteger(v);
    if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length || !size.every(whole) || !stride.every(whole) || !whole(offset))
      fail(`tensor on storage ${st.key} has an unreadable size/stride/offset`);
    if (size.some((x) => x < 0)) fail(`tensor on storage ${st.key} has a negative size [${size.join(',')}]`);
    if (offset < 0) fail(`tensor on storage ${st.key} has a negative storage offset ${offset} (torch refuses it too)`);
    if (stride.some((x) => x < 0)) fail(`tensor on storage ${st.key} has a negative stride (${stride.join(',')}) (torch refuses it too)`);
    const numel = size.reduce((x, y) => x * y, 1);
    if (numel > MAX_TENSOR_ELEMENTS) {
      fail(`tensor view [${size.join(',')}] on storage ${st.key} has ${numel} elements, more than the limit of ${MAX_TENSOR_ELEMENTS}`);
    }
    viewElements += numel;
    if (viewElements > MAX_TENSOR_ELEMENTS) fail(`tensor views total ${viewElements} elements with [${size.join(',')}], more than the limit of ${MAX_TENSOR_ELEMENTS} for one file`);
    const all = storage(st);
    if (numel > 0) {
      const last = size.reduce((o, n, d) => o + (n - 1) * stride[d], offset);
      if (last >= all.length) fail(`tensor [${size.join(',')}] (offset ${offset}, strides ${stride.join(',')}) reads past its storage ${st.key} of ${all.length} elements`);
    }
    const out = new Float32Array(numel);
    const idx = new Array(size.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let o = offset;
      for (let d = 0; d < size.length; d++) o += idx[d] * stride[d];
      out[i] = all[o];
      for (let d = size.length - 1; d >= 0; d--) {
        if (++idx[d] < size[d]) break;
        idx[d] = 0;
      }
    }
    const t: TorchTensor = { kind: 'tensor', shape: size.slice(), data: out, dtype: st.dtype };
    return t;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        bytes(8);
        break;
      case 0x2e: // STOP
        return pop();
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memo.get(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memo.get(u32()));
        break;
      case 0x58: // BINUNICODE
        stack.push(dec.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(dec.decode(bytes(u8())));
        break;
      case 0x8d: {
        // BINUNICODE8
        const lo = u32();
        const hi = u32();
        stack.push(dec.decode(bytes(hi * 2 ** 32 + lo)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(dec.decode(bytes(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(dec.decode(bytes(i32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()));
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        pos += 8;
        stack.push(dv.getFloat64(pos - 8, false));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail('APPEND on a non-list');
        (list as unknown[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail('APPENDS on a non-list');
        // One by one: push(...items) overflows the call stack for long lists.
        for (const v of items) (list as unknown[]).push(v);
        break;
      }
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop() as string;
        const module = pop() as string;
        stack.push(global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: // BUILD: state for OrderedDict/tensor hooks; nothing we need
        pop();
        break;
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop() as unknown[];
        if (!Array.isArray(pid) || pid[0] !== 'storage') fail('unknown persistent id');
        const type = pid[1] as Global;
        const dtype = STORAGE_DTYPES[type?.name];
        if (!dtype) fail(`storage type ${type?.name} is not a float type (F16/F32/BF16/F64)`);
        stack.push({ kind: 'storage', dtype, key: String(pid[2]), numel: pid[4] as number } satisfies StorageRef);
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
}

/** One file of a zip archive, from its central directory. */
interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  /** Declared uncompressed size. */
  size: number;
  localOffset: number;
}

class ZipError extends Error {}

/** The central directory of a zip archive (zip64 too), without inflating anything. */
function zipDirectory(buf: Uint8Array): Map<string, ZipEntry> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (at: number, n: number, what: string) => {
    if (at < 0 || at + n > buf.length) throw new ZipError(`${what} lies outside the file`);
  };
  const u16 = (at: number) => (need(at, 2, 'a header field'), dv.getUint16(at, true));
  const u32 = (at: number) => (need(at, 4, 'a header field'), dv.getUint32(at, true));
  const u64 = (at: number) => {
    need(at, 8, 'a header field');
    const v = dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('a zip64 size is out of range');
    return Number(v);
  };
  // The end record is in the last 22 + 65535 (comment) bytes.
  const lowest = Math.max(0, buf.length - 22 - 65535);
  let e = buf.length - 22;
  while (e >= lowest && dv.getUint32(e, true) !== 0x06054b50) e--;
  if (e < lowest) throw new ZipError('no end of central directory');
  let count = u16(e + 10);
  let o = u32(e + 16);
  if (e >= 20 && u32(e - 20) === 0x07064b50) {
    const z = u64(e - 12);
    if (u32(z) === 0x06064b50) {
      count = u64(z + 32);
      o = u64(z + 48);
    }
  }
  const entries = new Map<string, ZipEntry>();
  const dec = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (u32(o) !== 0x02014b50) throw new ZipError(`central directory entry ${i} is damaged`);
    const method = u16(o + 10);
    let compressedSize = u32(o + 20);
    let size = u32(o + 24);
    const nameLen = u16(o + 28);
    const extraLen = u16(o + 30);
    const commentLen = u16(o + 32);
    let localOffset = u32(o + 42);
    need(o + 46, nameLen + extraLen, `entry ${i}'s name`);
    const name = dec.decode(buf.subarray(o + 46, o + 46 + nameLen));
    if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      // Zip64 extra field: the 64-bit values, in this order, of those that are 0xffffffff.
      for (let x = o + 46 + nameLen; x + 4 <= o + 46 + nameLen + extraLen; x += 4 + u16(x + 2)) {
        if (u16(x) !== 1) continue;
        let at = x + 4;
        if (size === 0xffffffff) {
          size = u64(at);
          at += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(at);
          at += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(at);
        break;
      }
    }
    entries.set(name, { name, method, compressedSize, size, localOffset });
    o += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/**
 * The bytes of one entry: its declared size checked against `limit` before anything is
 * allocated, then against what it actually holds or inflates to.
 */
function zipEntryBytes(buf: Uint8Array, e: ZipEntry, what: string, limit: number): Uint8Array {
  if (e.size > limit) {
    throw new Error(`${what}: ${e.name} declares ${e.size} bytes, more than the limit of ${limit} bytes for one entry; refusing to inflate it (damaged or hostile archive)`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lo = e.localOffset;
  if (lo + 30 > buf.length || dv.getUint32(lo, true) !== 0x04034b50) throw new Error(`${what}: ${e.name}'s local header is missing (truncated download?)`);
  const start = lo + 30 + dv.getUint16(lo + 26, true) + dv.getUint16(lo + 28, true);
  if (start + e.compressedSize > buf.length) throw new Error(`${what}: ${e.name} runs past the end of the file (truncated download?)`);
  const raw = buf.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.compressedSize !== e.size) throw new Error(`${what}: ${e.name} is stored with ${e.compressedSize} bytes but declares ${e.size}`);
    return raw;
  }
  if (e.method !== 8) throw new Error(`${what}: ${e.name} uses zip compression method ${e.method}; only stored and deflate are read`);
  const tooBig = () => new Error(`${what}: ${e.name} inflates to more than the ${e.size} bytes it declares; refusing it (damaged or hostile archive)`);
  let out: Buffer;
  try {
    // One byte more than declared is enough to tell that it holds more.
    out = zlib.inflateRawSync(raw, { maxOutputLength: e.size + 1 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooBig();
    throw new Error(`${what}: ${e.name} does not inflate (${(err as Error).message}); truncated download?`);
  }
  if (out.length > e.size) throw tooBig();
  if (out.length !== e.size) throw new Error(`${what}: ${e.name} inflates to ${out.length} bytes but declares ${e.size}; damaged archive`);
  return out;
}

/**
 * Reads a torch.save zip archive and returns its unpickled object (dicts as Maps, tensors as
 * TorchTensor). Only data.pkl and the storages it references are inflated, each checked against
 * `maxEntryBytes` (default MAX_ENTRY_BYTES). Throws one line for a file that is not a zip, is
 * truncated, has no data.pkl, or declares sizes out of bounds.
 */
export function readTorchZip(buf: Uint8Array, what = 'file.pth', opts: { maxEntryBytes?: number } = {}): unknown {
  const limit = opts.maxEntryBytes ?? MAX_ENTRY_BYTES;
  let entries: Map<string, ZipEntry>;
  try {
    entries = zipDirectory(buf);
  } catch (e) {
    const legacy = buf.length > 2 && buf[0] === 0x80;
    throw new Error(
      legacy
        ? `${what}: legacy (pre-1.6, non-zip) torch.save format; re-save it with torch.save(obj, path) in a recent PyTorch`
        : `${what}: not a readable PyTorch zip archive (${(e as Error).message}); truncated download?`,
    );
  }
  const pkl = [...entries.keys()].find((k) => k.endsWith('data.pkl'));
  if (!pkl) throw new Error(`${what}: zip archive has no data.pkl: not a torch.save file`);
  const prefix = pkl.slice(0, -'data.pkl'.length);
  return unpickleTorch(
    zipEntryBytes(buf, entries.get(pkl)!, what, limit),
    (key) => {
      const e = entries.get(`${prefix}data/${key}`);
      if (!e) throw new Error(`${what}: storage data/${key} is missing from the archive`);
      return zipEntryBytes(buf, e, what, limit);
    },
    what,
  );
}

// ---------------------------------------------------------------------------------------------
// Writer (tests and fixtures): the same format torch.save produces for a dict of tensors.

class PickleWriter {
  private out: number[] = [];
  private memo = 0;
  op(...b: number[]) {
    this.out.push(...b);
  }
  u32(v: number) {
    this.op(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255);
  }
  put() {
    const m = this.memo++;
    if (m < 256) this.op(0x71, m);
    else {
      this.op(0x72);
      this.u32(m);
    }
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.out.push(...b);
    this.put();
  }
  int(v: number) {
    if (v >= 0 && v < 256) this.op(0x4b, v);
    else if (v >= 0 && v < 65536) this.op(0x4d, v & 255, v >> 8);
    else {
      this.op(0x4a);
      this.u32(v);
    }
  }
  global(module: string, name: string) {
    this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
    this.put();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/**
 * Encodes a dict {name: tensor} as a torch.save zip archive (storages in fp16 or fp32), as
 * PyTorch ≥ 1.6 writes it: a protocol-2 pickle with persistent storage ids and stored (not
 * compressed) zip entries under `<stem>/`.
 */
export function writeTorchDict(tensors: Record<string, { shape: number[]; data: ArrayLike<number> }>, opts: { dtype?: 'F16' | 'F32'; stem?: string } = {}): Uint8Array {
  const dtype = opts.dtype ?? 'F16';
  const stem = opts.stem ?? 'archive';
  const w = new PickleWriter();
  const files: Record<string, Uint8Array> = {};
  w.op(0x80, 2); // PROTO 2
  w.op(0x7d); // EMPTY_DICT
  w.put();
  w.op(0x28); // MARK
  Object.entries(tensors).forEach(([name, t], key) => {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const raw = new Uint8Array(numel * (dtype === 'F16' ? 2 : 4));
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < numel; i++) {
      if (dtype === 'F16') dv.setUint16(2 * i, f32ToF16(t.data[i]), true);
      else dv.setFloat32(4 * i, t.data[i], true);
    }
    files[`${stem}/data/${key}`] = raw;
    w.str(name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.op(0x28); // MARK (args tuple)
    w.op(0x28); // MARK (persistent id tuple)
    w.str('storage');
    w.global('torch', dtype === 'F16' ? 'HalfStorage' : 'FloatStorage');
    w.str(String(key));
    w.str('cpu');
    w.int(numel);
    w.op(0x74); // TUPLE
    w.put();
    w.op(0x51); // BINPERSID
    w.int(0); // storage_offset
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    w.op(0x28);
    t.shape.forEach((s) => w.int(s));
    w.op(0x74);
    w.put();
    w.op(0x28);
    stride.forEach((s) => w.int(s));
    w.op(0x74);
    w.put();
    w.op(0x89); // requires_grad False
    w.global('collections', 'OrderedDict');
    w.op(0x29, 0x52); // EMPTY_TUPLE, REDUCE
    w.put();
    w.op(0x74); // TUPLE (args)
    w.put();
    w.op(0x52); // REDUCE
    w.put();
  });
  w.op(0x75); // SETITEMS
  w.op(0x2e); // STOP
  files[`${stem}/data.pkl`] = w.bytes();
  files[`${stem}/version`] = new TextEncoder().encode('3\n');
  files[`${stem}/byteorder`] = new TextEncoder().encode('little');
  return zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, [v, { level: 0 as const }]])) as Zippable);
}
