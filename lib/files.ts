/**
 * Files that nothing a user saved is lost to: every write goes to a temporary file in the same
 * folder and is renamed over the target (atomic on POSIX), and the temporaries a killed process
 * left behind are cleaned up. Used by every writer of the project (weights, checkpoints, PNGs,
 * manifests, reports).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes bytes atomically: a temporary file in the same folder, then rename (creates folders). */
export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** The temporary name pattern of writeFileAtomic: `<file>.<pid>.<random>.tmp`. */
const ATOMIC_TMP = /^.+\.(\d+)\.[0-9a-z]+\.tmp$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files that writeFileAtomic left in `dir` when its process was killed
 * mid-write (`<file>.<pid>.<random>.tmp` of a process that no longer runs, or older than an
 * hour). Other files, and those of a live writer, are left alone. Returns the names removed.
 */
export function removeStaleTmpFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = ATOMIC_TMP.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    const pid = Number(m[1]);
    const stale = (pid !== process.pid && !processAlive(pid)) || Date.now() - st.mtimeMs > 3600_000;
    if (!stale) continue;
    fs.rmSync(file, { force: true });
    removed.push(name);
  }
  return removed;
}
