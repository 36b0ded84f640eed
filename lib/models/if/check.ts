/**
 * `npm run weights -- check DIR`: validates a model folder (or an embeddings file) before
 * anything uses it — config readable and supported, weights file present and complete (header,
 * dtypes, offsets within the file), every parameter name and shape as the config implies, and
 * optionally every value finite. A Part B file (`.weights`, `last.ckpt`) gets its header, tensor
 * table and checksum checked (and its values with --full). Never allocates TF.js tensors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPromptEmbeddings } from '../../weights/embeddings';
import { findUnetFiles } from '../../weights/diffusersLayout';
import { planUnetFromDir } from './load';
import { matchKeys, openSafetensors } from '../../weights/safetensors';
import { loadTensorFile } from '../../weights/tensorFile';
import { parseClassifierHeader, parseUNetHeader } from '../../weights/headers';

export interface CheckResult {
  ok: boolean;
  /** One line: what is wrong (or a summary when ok). */
  line: string;
  /** Further detail lines (key lists, sizes). */
  details: string[];
}

function first<T>(xs: T[], f: (x: T) => string, n = 3): string {
  return xs.slice(0, n).map(f).join(', ') + (xs.length > n ? `, … (${xs.length} in all)` : '');
}

/**
 * Checks a model folder (`<dir>/unet/…` or a unet folder) or a prompt-embeddings file.
 * @param full also read every tensor and check the values are finite (streams the whole file)
 */
export function checkModel(target: string, o: { full?: boolean; onProgress?: (done: number, total: number) => void } = {}): CheckResult {
  try {
    if (!fs.existsSync(target)) return { ok: false, line: `${target}: no such file or folder`, details: [] };
    if (fs.statSync(target).isFile()) {
      if (isPartBFile(target)) return checkPartBFile(target, !!o.full);
      const e = loadPromptEmbeddings(target);
      return { ok: true, line: `${path.basename(target)}: ${e.byPrompt.size} prompt embeddings of [${e.seqLen},${e.dim}]`, details: [...e.byPrompt.keys()].map((p) => `  ${JSON.stringify(p)}`) };
    }
    const unet = planUnetFromDir(target);
    const { weights } = findUnetFiles(target);
    const src = openSafetensors(weights);
    try {
      const r = matchKeys(unet.specs, src.tensors);
      if (!r.ok) {
        const parts: string[] = [];
        if (r.missing.length) parts.push(`${r.missing.length} missing (${first(r.missing, (x) => x)})`);
        if (r.unexpected.length) parts.push(`${r.unexpected.length} unexpected (${first(r.unexpected, (x) => x)})`);
        if (r.misshaped.length) parts.push(`${r.misshaped.length} misshaped (${first(r.misshaped, (m) => `${m.name} [${m.found}] ≠ [${m.expected}]`)})`);
        return { ok: false, line: `${path.relative('.', weights) || weights}: does not match unet/config.json: ${parts.join('; ')}`, details: [] };
      }
      if (o.full) {
        let i = 0;
        for (const s of unet.specs) {
          const t = src.read(s.name);
          const bad = t.data.findIndex((v) => !Number.isFinite(v));
          if (bad >= 0) return { ok: false, line: `${path.basename(weights)}: tensor ${s.name} has a non-finite value (${t.data[bad]}) at index ${bad}`, details: [] };
          o.onProgress?.(++i, unet.specs.length);
        }
      }
      const dtypes = new Set([...src.tensors.values()].map((t) => t.dtype));
      const n = unet.paramCount;
      return {
        ok: true,
        line: `${target}: OK — ${unet.specs.length} tensors, ${(n / 1e9).toFixed(3)}B parameters (${[...dtypes].join('/')} on disk, ${(n * 4 / 2 ** 30).toFixed(2)} GiB as float32 in TF.js)${o.full ? ', all values finite' : ''}`,
        details: [`  weights: ${weights}`, `  blocks: ${unet.config.blockOutChannels.join(', ')} channels; ${unet.config.downBlockTypes.join(', ')}`],
      };
    } finally {
      src.close();
    }
  } catch (e) {
    return { ok: false, line: (e as Error).message.split('\n')[0], details: (e as Error).message.split('\n').slice(1) };
  }
}

/** A Part B tensor file (weights/partb-*.weights, a run's epoch-K.weights or last.ckpt): by its magic bytes. */
function isPartBFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(8);
    return fs.readSync(fd, b, 0, 8, 0) === 8 && b.toString('ascii') === 'DNBTENS1';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A Part B weights, checkpoint or classifier file: header, tensor table and checksum (every read
 * checks them), the header's kind and config; with `full`, every value finite.
 */
function checkPartBFile(file: string, full: boolean): CheckResult {
  const { meta, tensors } = loadTensorFile(file);
  const kind = (meta as { kind?: unknown })?.kind;
  let what: string;
  if (kind === 'partb-classifier') {
    parseClassifierHeader(meta, file);
    what = 'Part B digit classifier';
  } else {
    const h = parseUNetHeader(meta, file);
    const c = h.config;
    const progress = h.kind === 'partb-checkpoint' ? `checkpoint at epoch ${h.state.epoch}, step ${h.state.step}` : `weights after epoch ${h.epoch}, step ${h.step}`;
    what = `Part B ${c.model} model (D=${c.D}), ${progress}`;
  }
  let values = 0;
  for (const [name, t] of tensors) {
    values += t.data.length;
    if (!full) continue;
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return { ok: false, line: `${path.basename(file)}: tensor ${name} has a non-finite value (${t.data[bad]}) at index ${bad}`, details: [] };
  }
  return {
    ok: true,
    line: `${path.basename(file)}: OK — ${what}: ${tensors.size} tensors, ${values} values (header, table and checksum verified${full ? ', all values finite' : ''})`,
    details: [],
  };
}
