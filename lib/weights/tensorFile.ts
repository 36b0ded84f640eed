/**
 * A flat name → float32 tensor file with a JSON header, used for Part B checkpoints and shipped
 * weights. Exact round trip (raw float32 little-endian bytes).
 *
 * Layout: "DNBTENS1" (8 bytes) | header length n (uint32 LE) | n bytes of UTF-8 JSON header |
 * zero padding to a multiple of 4 | data. The header holds `meta` (any JSON), the tensor table
 * (name, shape, dtype, byte offset and length into data) and a CRC-32, so truncation or corruption
 * is detected on load with a clear error.
 *
 * Versions: 2 (written now) checksums the header's bytes (meta and table) and the data: the CRC-32
 * runs over the JSON text without its final `,"crc32":N` member, then over the data. 1 (the files
 * written before, e.g. the shipped weights/) checksums the data only; both are read. In both, the
 * table must describe the data exactly: tensors in order, back to back, each within the data, no
 * overlap and no gap (as the writer lays them out), so a damaged table is refused even in version 1.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { writeFileAtomic } from '../files';

const MAGIC = 'DNBTENS1';
/** Largest JSON header accepted (real ones are well under 1 MB: the loss history of a long run). */
const MAX_HEADER = 256 * 1024 * 1024;

/** One stored tensor: shape and float32 values (row-major, TF.js layout). */
export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

interface TableEntry {
  name: string;
  shape: number[];
  /** Byte offset into the data block. */
  offset: number;
  /** Byte length (version 2). */
  length?: number;
  /** Element type (version 2): always 'F32'. */
  dtype?: 'F32';
}

interface Header {
  version: 1 | 2;
  meta: unknown;
  tensors: TableEntry[];
  dataBytes: number;
  crc32: number;
}

/** Serializes tensors + meta into the file format's bytes (version 2). */
export function encodeTensorFile(tensors: Map<string, StoredTensor>, meta: unknown): Buffer {
  const table: TableEntry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape}] does not match ${t.data.length} values`);
    table.push({ name, shape: t.shape, dtype: 'F32', offset, length: t.data.length * 4 });
    offset += t.data.length * 4;
  }
  const data = Buffer.alloc(offset);
  for (const [i, t] of [...tensors.values()].entries()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(data, table[i].offset);
  }
  // The checksum covers the header text (meta and table) as written, then the data.
  const body = JSON.stringify({ version: 2, meta, tensors: table, dataBytes: offset });
  const crc = zlib.crc32(data, zlib.crc32(Buffer.from(body, 'utf8')));
  const json = Buffer.from(`${body.slice(0, -1)},"crc32":${crc}}`, 'utf8');
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

function invalid(file: string, why: string): Error {
  return new Error(`${file} is not a valid checkpoint/weights file (${why}); delete it and resume from an earlier checkpoint or retrain`);
}

/** Parses and checks the magic, header length and JSON header; returns the header and where the data starts. */
function parseHeader(head: Buffer, fileSize: number, file: string): { header: Header; json: Buffer; start: number } {
  const bad = (why: string) => invalid(file, why);
  if (head.length < 12 || head.toString('ascii', 0, 8) !== MAGIC) throw bad('wrong magic bytes');
  const n = head.readUInt32LE(8);
  if (n > MAX_HEADER || 12 + n > fileSize) throw bad('truncated header');
  if (12 + n > head.length) throw bad('truncated header');
  const json = head.subarray(12, 12 + n);
  let header: Header;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch {
    throw bad('unreadable header');
  }
  if (typeof header !== 'object' || header === null || (header.version !== 1 && header.version !== 2) || !Array.isArray(header.tensors))
    throw bad('unknown header version');
  if (!Number.isSafeInteger(header.dataBytes) || header.dataBytes < 0) throw bad(`data size ${JSON.stringify(header.dataBytes)} is not a byte count`);
  const start = 12 + n + ((4 - ((12 + n) % 4)) % 4);
  return { header, json, start };
}

/**
 * Checks the tensor table against the data block: every entry a unique name, a shape of whole
 * numbers, dtype F32, and an offset and length that put it right after the previous one, inside
 * the data (nothing negative, past the end, overlapping, swapped or left over).
 */
function checkTable(header: Header, file: string): void {
  const seen = new Set<string>();
  let next = 0;
  for (const [i, t] of header.tensors.entries()) {
    const bad = (why: string) => invalid(file, `table entry ${i}${typeof t?.name === 'string' ? ` "${t.name}"` : ''}: ${why}`);
    if (typeof t !== 'object' || t === null || typeof t.name !== 'string') throw bad('no name');
    if (seen.has(t.name)) throw bad('the name appears twice');
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) throw bad(`shape ${JSON.stringify(t.shape)} is not a list of sizes`);
    if (t.dtype !== undefined && t.dtype !== 'F32') throw bad(`dtype ${JSON.stringify(t.dtype)} is not F32`);
    if (header.version === 2 && t.dtype !== 'F32') throw bad('no dtype');
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    if (!Number.isSafeInteger(t.offset) || t.offset < 0) throw bad(`offset ${JSON.stringify(t.offset)} is negative or not a whole number`);
    if (t.length !== undefined && t.length !== bytes) throw bad(`length ${JSON.stringify(t.length)} but shape [${t.shape}] of F32 needs ${bytes} bytes`);
    if (header.version === 2 && t.length === undefined) throw bad('no length');
    if (t.offset + bytes > header.dataBytes) throw bad(`bytes ${t.offset}..${t.offset + bytes} lie past the end of the data (${header.dataBytes} bytes)`);
    if (t.offset !== next)
      throw bad(`offset ${t.offset}, expected ${next} (${t.offset < next ? 'it overlaps the previous tensor' : 'a gap before it'}; tensors are stored in order, back to back)`);
    next += bytes;
  }
  if (next !== header.dataBytes) throw invalid(file, `the table covers ${next} of the ${header.dataBytes} data bytes`);
}

/** Parses bytes; throws a one-line error naming the file when anything is inconsistent. */
export function decodeTensorFile(buf: Buffer, file = '<buffer>'): { meta: unknown; tensors: Map<string, StoredTensor> } {
  const bad = (why: string) => invalid(file, why);
  const { header, json, start } = parseHeader(buf, buf.length, file);
  if (buf.length !== start + header.dataBytes) throw bad(`expected ${start + header.dataBytes} bytes, found ${buf.length}; truncated?`);
  for (let i = 12 + json.length; i < start; i++) if (buf[i] !== 0) throw bad('header padding is not zero');
  const data = buf.subarray(start);
  if (header.version === 2) {
    // The checksummed text is the header without its final `,"crc32":N` member.
    const tail = /,"crc32":(\d+)\}$/.exec(json.toString('latin1'));
    if (!tail || Number(tail[1]) !== header.crc32) throw bad('checksum field is not at the end of the header');
    const body = Buffer.concat([json.subarray(0, json.length - tail[0].length), Buffer.from('}')]);
    if (zlib.crc32(data, zlib.crc32(body)) !== header.crc32) throw bad('checksum mismatch');
  } else if (zlib.crc32(data) !== header.crc32) throw bad('checksum mismatch');
  checkTable(header, file);
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

/**
 * The header's `meta` only (reads the header bytes, not the data; the checksum is not verified):
 * for checking a checkpoint's settings before any work.
 */
export function readTensorFileMeta(file: string): unknown {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const pre = Buffer.alloc(Math.min(12, size));
    fs.readSync(fd, pre, 0, pre.length, 0);
    if (pre.length < 12 || pre.toString('ascii', 0, 8) !== MAGIC) throw invalid(file, 'wrong magic bytes');
    const n = pre.readUInt32LE(8);
    if (n > MAX_HEADER || 12 + n > size) throw invalid(file, 'truncated header');
    const head = Buffer.alloc(12 + n);
    fs.readSync(fd, head, 0, head.length, 0);
    return parseHeader(head, size, file).header.meta;
  } finally {
    fs.closeSync(fd);
  }
}
