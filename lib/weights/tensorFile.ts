/**
 * A flat name → float32 tensor file with a JSON header, used for Part B checkpoints and shipped
 * weights. Exact round trip (raw float32 little-endian bytes).
 *
 * Layout: "DNBTENS1" (8 bytes) | header length n (uint32 LE) | n bytes of UTF-8 JSON header |
 * zero padding to a multiple of 4 | data. The header holds `meta` (any JSON), the tensor table
 * (name, shape, byte offset into data) and a CRC-32 of the data, so truncation or corruption is
 * detected on load with a clear error.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { writeFileAtomic } from '../image/io';

const MAGIC = 'DNBTENS1';

/** One stored tensor: shape and float32 values (row-major, TF.js layout). */
export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

interface Header {
  version: 1;
  meta: unknown;
  tensors: Array<{ name: string; shape: number[]; offset: number }>;
  dataBytes: number;
  crc32: number;
}

/** Serializes tensors + meta into the file format's bytes. */
export function encodeTensorFile(tensors: Map<string, StoredTensor>, meta: unknown): Buffer {
  const table: Header['tensors'] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    table.push({ name, shape: t.shape, offset });
    offset += t.data.length * 4;
  }
  const data = Buffer.alloc(offset);
  for (const [i, t] of [...tensors.values()].entries()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(data, table[i].offset);
  }
  const header: Header = { version: 1, meta, tensors: table, dataBytes: offset, crc32: zlib.crc32(data) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = 8 + 4 + json.length;
  const pad = (4 - (pre % 4)) % 4;
  const head = Buffer.alloc(pre + pad);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);
  return Buffer.concat([head, data]);
}

/** Writes the file atomically (temporary file, then rename). */
export function saveTensorFile(file: string, tensors: Map<string, StoredTensor>, meta: unknown): void {
  writeFileAtomic(file, encodeTensorFile(tensors, meta));
}

/** Parses bytes; throws a one-line error naming the file when anything is inconsistent. */
export function decodeTensorFile(buf: Buffer, file = '<buffer>'): { meta: unknown; tensors: Map<string, StoredTensor> } {
  const bad = (why: string) =>
    new Error(`${file} is not a valid checkpoint/weights file (${why}); delete it and resume from an earlier checkpoint or retrain`);
  if (buf.length < 12 || buf.toString('ascii', 0, 8) !== MAGIC) throw bad('wrong magic bytes');
  const n = buf.readUInt32LE(8);
  if (12 + n > buf.length) throw bad('truncated header');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + n));
  } catch {
    throw bad('unreadable header');
  }
  const start = 12 + n + ((4 - ((12 + n) % 4)) % 4);
  if (header.version !== 1 || !Array.isArray(header.tensors)) throw bad('unknown header version');
  if (buf.length !== start + header.dataBytes) throw bad(`expected ${start + header.dataBytes} bytes, found ${buf.length}; truncated?`);
  const data = buf.subarray(start);
  if (zlib.crc32(data) !== header.crc32) throw bad('checksum mismatch');
  const tensors = new Map<string, StoredTensor>();
  for (const t of header.tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const copy = new Float32Array(count);
    Buffer.from(copy.buffer).set(data.subarray(t.offset, t.offset + count * 4));
    tensors.set(t.name, { shape: t.shape, data: copy });
  }
  return { meta: header.meta, tensors };
}

/** Reads and validates a tensor file. */
export function loadTensorFile(file: string): { meta: unknown; tensors: Map<string, StoredTensor> } {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
  return decodeTensorFile(fs.readFileSync(file), file);
}
