/**
 * The Part B tensor file (lib/weights/tensorFile.ts): every table entry is checked against the
 * data block (offset past the data, negative, overlapping, swapped, wrong length or dtype), the
 * version-2 checksum covers the header (table and meta) as well as the data, the version-1 files
 * shipped in weights/ still load, and `npm run weights -- check` reads a Part B file.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { trainCommand } from '../../lib/weights/shipped';
import { decodeTensorFile, encodeTensorFile, loadTensorFile, readTensorFileMeta, type StoredTensor } from '../../lib/weights/tensorFile';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorfile-'));
const ROOT = path.resolve(__dirname, '..', '..', '..');

function tensors(): Map<string, StoredTensor> {
  return new Map([
    ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['b', { shape: [2, 3], data: Float32Array.from([7, 8, 9, 10, 11, 12]) }],
    ['c', { shape: [4], data: Float32Array.from([13, 14, 15, 16]) }],
  ]);
}

/** The JSON header of an encoded file, and a function that re-encodes it with a changed header. */
function parts(buf: Buffer): { header: Record<string, unknown> & { tensors: Record<string, unknown>[] }; data: Buffer } {
  const n = buf.readUInt32LE(8);
  const start = 12 + n + ((4 - ((12 + n) % 4)) % 4);
  return { header: JSON.parse(buf.toString('utf8', 12, 12 + n)), data: buf.subarray(start) };
}

/** Re-assembles a file from a header object and data (the checksum recomputed as version 1 does: data only). */
function assemble(header: object, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = 12 + json.length;
  const head = Buffer.alloc(pre + ((4 - (pre % 4)) % 4));
  head.write('DNBTENS1', 0, 'ascii');
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);
  return Buffer.concat([head, data]);
}

/** A version-1 file (as written before the table was checksummed), with a correct data checksum. */
function v1(t = tensors(), meta: unknown = { kind: 'x' }, edit: (e: Record<string, unknown>[]) => void = () => {}): Buffer {
  const { header, data } = parts(encodeTensorFile(t, meta));
  const table = header.tensors.map((e) => ({ name: e.name, shape: e.shape, offset: e.offset }));
  edit(table);
  return assemble({ version: 1, meta, tensors: table, dataBytes: data.length, crc32: zlib.crc32(data) }, data);
}

const refused = (buf: Buffer, re: RegExp) =>
  assert.throws(
    () => decodeTensorFile(buf, 'f.weights'),
    (e: Error) => {
      assert.match(e.message, re);
      assert.match(e.message, /^f\.weights is not a valid checkpoint\/weights file/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );

test('round trip; version 2 tables carry dtype and length', () => {
  const buf = encodeTensorFile(tensors(), { kind: 'x', n: 1 });
  const back = decodeTensorFile(buf);
  assert.deepEqual(back.meta, { kind: 'x', n: 1 });
  for (const [k, t] of tensors()) assert.deepEqual(back.tensors.get(k), t);
  const { header } = parts(buf);
  assert.equal(header.version, 2);
  assert.deepEqual(header.tensors[1], { name: 'b', shape: [2, 3], dtype: 'F32', offset: 24, length: 24 });
  const file = path.join(dir, 'rt.weights');
  fs.writeFileSync(file, buf);
  assert.deepEqual(readTensorFileMeta(file), { kind: 'x', n: 1 });
});

test('version 1 files still load; a table entry past, before, over or out of order with the data is refused', () => {
  assert.deepEqual(decodeTensorFile(v1()).tensors.get('c')!.data, Float32Array.from([13, 14, 15, 16]));
  refused(
    v1(undefined, undefined, (t) => (t[2].offset = 1000)),
    /table entry 2 "c": bytes 1000\.\.1016 lie past the end of the data \(64 bytes\)/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[1].offset = -24)),
    /table entry 1 "b": offset -24 is negative/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[1].offset = 12)),
    /table entry 1 "b": offset 12, expected 24 \(it overlaps the previous tensor/,
  );
  // Swapped: b's and c's offsets exchanged (c would read b's bytes).
  refused(
    v1(undefined, undefined, (t) => ([t[1].offset, t[2].offset] = [48, 24])),
    /table entry 1 "b": (offset 48, expected 24|bytes 48\.\.72 lie past)/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[0].shape = [2, 2])),
    /table entry 1 "b": offset 24, expected 16 \(a gap before it/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[0].dtype = 'F16')),
    /table entry 0 "a": dtype "F16" is not F32/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[2].shape = [-4])),
    /table entry 2 "c": shape \[-4\] is not a list of sizes/,
  );
  refused(
    v1(undefined, undefined, (t) => t.pop()),
    /the table covers 48 of the 64 data bytes/,
  );
  refused(
    v1(undefined, undefined, (t) => (t[2].name = 'a')),
    /table entry 2 "a": the name appears twice/,
  );
});

test('version 2: the checksum covers the table and meta, not only the data', () => {
  const buf = encodeTensorFile(tensors(), { kind: 'x', epoch: 3 });
  // Same-size tensors a and b swapped in the table: the data checksum alone cannot see it.
  const swapped = Buffer.from(
    buf
      .toString('latin1')
      .replace('"offset":0,', '"offset":X,')
      .replace('"offset":24,', '"offset":0,')
      .replace('"offset":X,', '"offset":24,'),
    'latin1',
  );
  assert.equal(swapped.length, buf.length);
  assert.notDeepEqual(swapped, buf);
  refused(swapped, /checksum mismatch/);
  const meta = Buffer.from(buf.toString('latin1').replace('"epoch":3', '"epoch":4'), 'latin1');
  refused(meta, /checksum mismatch/);
  const data = Buffer.from(buf);
  data[data.length - 1] ^= 1;
  refused(data, /checksum mismatch/);
  // A table entry whose length disagrees with its shape (checksum made to match).
  const { header, data: d } = parts(buf);
  (header.tensors[0] as { length: number }).length = 20;
  delete (header as { crc32?: number }).crc32;
  const body = JSON.stringify(header);
  const crc = zlib.crc32(d, zlib.crc32(Buffer.from(body)));
  const json = `${body.slice(0, -1)},"crc32":${crc}}`;
  const fixed = assemble(JSON.parse(json), d);
  refused(fixed, /table entry 0 "a": length 20 but shape \[2,3\] of F32 needs 24 bytes/);
});

test('the shipped weights/ files (version 1) still load, and `npm run weights -- check` reads Part B files', () => {
  const shipped = fs.readdirSync(path.join(ROOT, 'weights')).filter((f) => f.endsWith('.weights'));
  assert.ok(shipped.length > 0);
  for (const f of shipped) assert.ok(loadTensorFile(path.join(ROOT, 'weights', f)).tensors.size > 0, f);
  const script = path.join(ROOT, 'dist', 'scripts', 'weights.js');
  const ok = spawnSync(process.execPath, [script, 'check', path.join(ROOT, 'weights', 'partb-class.weights'), '--full'], {
    encoding: 'utf8',
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^partb-class\.weights: OK — Part B class model \(D=\d+\), weights after epoch \d+.*all values finite/);
  assert.doesNotMatch(ok.stdout + ok.stderr, /unsupported embeddings format/);
  const bad = path.join(dir, 'bad.weights');
  fs.writeFileSync(
    bad,
    v1(undefined, undefined, (t) => (t[2].offset = 1000)),
  );
  const r = spawnSync(process.execPath, [script, 'check', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^check failed: .*bad\.weights is not a valid checkpoint\/weights file \(table entry 2 "c": bytes 1000\.\.1016 lie past/,
  );
  assert.equal(r.stderr.trim().split('\n').length, 1);
  // "Weights missing" messages name commands that exist (there is no `npm run weights -- --partb`).
  for (const m of ['denoiser', 'time', 'class', 'classifier'] as const) assert.doesNotMatch(trainCommand(m), /--partb/);
  assert.match(trainCommand('class'), /npm run train -- --model class .*&& npm run partb-quality -- --ship --models class$/);
});
