/**
 * The GPU container's Dockerfile, read instruction by instruction (no Docker engine runs in CI):
 * base image, NVIDIA/Vulkan exposure, the packages scripts/setup.sh expects, npm ci before the
 * sources, the tslab kernel, the build, Jupyter on 8888. Its shell steps are syntax-checked with
 * bash, its apt packages looked up in the apt cache where there is one, and its entry point's
 * ICD logic is run for real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { validate, ValidationSeverity } from 'dockerfile-utils';

const ROOT = path.resolve(__dirname, '..', '..', '..');

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Parses a Dockerfile: joins `\` continuations, drops comments and blank lines (Docker's rules). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (/^\s*#/.test(raw)) continue; // comments, also inside a continued instruction
    if (buf === '' && raw.trim() === '') continue;
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(raw)) {
      buf += raw.replace(/\\\s*$/, ''); // Docker drops the backslash-newline, nothing else
      continue;
    }
    buf += raw;
    const m = buf.trim().match(/^(\w+)\s+([\s\S]*)$/);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${buf.trim()}"`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
    buf = '';
  }
  if (buf !== '') throw new Error('Dockerfile ends inside a continued instruction');
  return out;
}

const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const ins = parseDockerfile(text);
const ops = (op: string) => ins.filter((i) => i.op === op);
const indexOf = (pred: (i: Instruction) => boolean) => ins.findIndex(pred);

/** Packages of every `apt-get install` in the RUN steps. */
function aptPackages(): string[] {
  const pkgs: string[] = [];
  for (const r of ops('RUN')) {
    const m = r.args.match(/apt-get install([^&;|]*)/);
    if (m) pkgs.push(...m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')));
  }
  return pkgs;
}

/** ENV key=value pairs (the multi-pair form). */
function envs(): Map<string, string> {
  const env = new Map<string, string>();
  for (const e of ops('ENV')) for (const m of e.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env.set(m[1], m[2].replace(/^"|"$/g, ''));
  return env;
}

test('every instruction is one Docker knows, and the base image is Debian bookworm with Node >= 20', () => {
  const known = new Set(['FROM', 'ARG', 'RUN', 'ENV', 'WORKDIR', 'USER', 'COPY', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'LABEL', 'SHELL']);
  for (const i of ins) assert.ok(known.has(i.op), `line ${i.line}: unexpected instruction ${i.op}`);
  const from = ops('FROM');
  assert.equal(from.length, 1, 'one stage');
  const m = from[0].args.match(/^node:(\d+)-bookworm(-slim)?$/);
  assert.ok(m, `base image is node:<major>-bookworm[-slim], got ${from[0].args}`);
  assert.ok(Number(m[1]) >= 20, 'Node 20 or newer, as package.json engines requires');
  assert.equal(ins[0].op, 'FROM', 'FROM comes first (no ARG is used in it)');
});

/** Every optional rule of the Docker language server's linter (npm dockerfile-utils), raised to an error. */
const STRICT_LINT = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

/** The linter's findings, one "line N: message" each. */
function lint(dockerfile: string): string[] {
  return validate(dockerfile, STRICT_LINT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

test('the Dockerfile linter finds nothing, and does find faults planted in a copy', () => {
  assert.deepEqual(lint(text), []);
  // The same file with three planted faults: the linter is live, not vacuous.
  const broken = text
    .replace('EXPOSE 8888', 'EXPOSE port8888')
    .replace('COPY --chown=node:node . .', 'COPY --chwn=node:node . .')
    .replace('WORKDIR /home/node/app', 'WORKDIR home/node/app');
  const found = lint(broken).join('\n');
  assert.match(found, /Invalid containerPort: port8888/);
  assert.match(found, /Unknown flag: chwn/);
  assert.match(found, /WORKDIR/i);
});

test('RUN steps with a pipe run under pipefail (a failing left side fails the build)', () => {
  const shell = indexOf((i) => i.op === 'SHELL');
  for (const [k, r] of ins.entries()) {
    if (r.op !== 'RUN' || !/[^|]\|[^|]/.test(r.args)) continue;
    assert.ok(shell >= 0 && shell < k, `RUN at line ${r.line} has a pipe: a SHELL with -o pipefail comes before it`);
    const argv = JSON.parse(ins[shell].args) as string[];
    assert.ok(argv.join(' ').includes('-o pipefail') && /bash$/.test(argv[0]), `SHELL ${ins[shell].args} sets pipefail in bash`);
  }
});

test('the NVIDIA driver parts WebGPU needs are asked for, and the engine stays automatic', () => {
  const env = envs();
  const caps = (env.get('NVIDIA_DRIVER_CAPABILITIES') ?? '').split(',');
  for (const c of ['compute', 'utility', 'graphics'])
    assert.ok(caps.includes(c), `NVIDIA_DRIVER_CAPABILITIES includes ${c} (graphics mounts the Vulkan ICD)`);
  assert.equal(env.get('NVIDIA_VISIBLE_DEVICES'), 'all');
  assert.ok(!env.has('DIFFUSION_ENGINE') || env.get('DIFFUSION_ENGINE') === 'auto', 'DIFFUSION_ENGINE left auto');
  const pkgs = aptPackages();
  for (const p of ['libvulkan1', 'libglvnd0', 'libx11-6', 'libxext6'])
    assert.ok(pkgs.includes(p), `apt installs ${p} (Vulkan loader / libGLX_nvidia dependencies)`);
});

test('the image holds everything scripts/setup.sh checks for, so npm run figures and npm test need no root', () => {
  const setup = fs.readFileSync(path.join(ROOT, 'scripts', 'setup.sh'), 'utf8');
  const wanted = [...setup.matchAll(/need\+=\(([^)]*)\)/g)].flatMap((m) => m[1].split(/\s+/).filter(Boolean));
  assert.ok(wanted.length >= 3, 'setup.sh lists its apt packages as need+=(...)');
  const pkgs = aptPackages();
  for (const p of wanted) assert.ok(pkgs.includes(p), `Dockerfile installs ${p}, which scripts/setup.sh installs otherwise (as root)`);
  const apt = ops('RUN').find((r) => r.args.includes('apt-get install'))!;
  assert.match(apt.args, /apt-get update/, 'apt-get update in the same step as the install');
  assert.match(apt.args, /--no-install-recommends/);
  assert.match(apt.args, /rm -rf \/var\/lib\/apt\/lists/, 'apt lists removed in the same layer');
});

test('apt packages exist in this Debian release (when an apt cache is at hand)', (t) => {
  const probe = spawnSync('apt-cache', ['policy', 'libvulkan1'], { encoding: 'utf8' });
  if (probe.status !== 0 || !/Candidate: \d/.test(probe.stdout)) {
    t.skip('no apt cache with Debian package lists here');
    return;
  }
  const pkgs = aptPackages();
  const r = spawnSync('apt-cache', ['policy', ...pkgs], { encoding: 'utf8' });
  // One block per package: "name:\n  Installed: ...\n  Candidate: <version or (none)>".
  const candidates = new Map([...r.stdout.matchAll(/^(\S+):\n(?:\s+Installed:.*\n)?\s+Candidate: (\S+)/gm)].map((m) => [m[1], m[2]]));
  for (const p of pkgs)
    assert.ok(/^\d/.test(candidates.get(p) ?? ''), `apt has a candidate for ${p} (got ${candidates.get(p) ?? 'nothing'})`);
});

test('npm ci runs on the lockfile before the sources are copied, then tslab is registered and the project built', () => {
  const lockCopy = indexOf((i) => i.op === 'COPY' && /package-lock\.json/.test(i.args) && !/\s\.\s+\.$/.test(i.args));
  const npmCi = indexOf((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
  const allCopy = indexOf((i) => i.op === 'COPY' && /(^|\s)\.\s+\.$/.test(i.args));
  const tslab = indexOf((i) => i.op === 'RUN' && /tslab install/.test(i.args));
  const build = indexOf((i) => i.op === 'RUN' && /tsc -p/.test(i.args));
  assert.ok(lockCopy >= 0 && npmCi > lockCopy, 'COPY package*.json, then RUN npm ci');
  assert.ok(allCopy > npmCi, 'sources copied after npm ci (dependency layer is cached)');
  assert.ok(build > allCopy, 'build after the sources');
  assert.ok(tslab > npmCi, 'tslab installed from node_modules');
  assert.match(ins[tslab].args, /--python=\/usr\/bin\/python3/, "tslab registered for Debian's python3, where Jupyter is");
  // The kernelspec starts `tslab` by name (unless --binary gives a path): it must be on the PATH.
  const workdir =
    ops('WORKDIR')
      .map((w) => w.args)
      .pop() ?? '/';
  const onPath = (envs().get('PATH') ?? '').split(':').includes(path.posix.join(workdir, 'node_modules/.bin'));
  assert.ok(onPath || /--binary[= ]\//.test(ins[tslab].args), 'tslab reachable when Jupyter starts the kernel');
  const user = ops('USER');
  assert.ok(user.length > 0 && user[user.length - 1].args !== 'root', 'runs as an unprivileged user');
});

test('Jupyter is served on 0.0.0.0:8888 by default, through the entry point', () => {
  assert.ok(
    ops('EXPOSE').some((e) => e.args.split(/\s+/).includes('8888')),
    'EXPOSE 8888',
  );
  const cmd = ops('CMD');
  assert.equal(cmd.length, 1);
  const argv = JSON.parse(cmd[0].args) as string[];
  assert.equal(argv[0], 'jupyter');
  assert.ok(argv.includes('notebook'));
  assert.ok(argv.includes('--ip=0.0.0.0') && argv.includes('--port=8888'));
  const ep = JSON.parse(ops('ENTRYPOINT')[0].args) as string[];
  assert.ok(fs.existsSync(path.join(ROOT, ep[ep.length - 1])), `entry point ${ep[ep.length - 1]} exists`);
});

test('COPY sources exist, and .dockerignore keeps build outputs (not sources or weights) out of the context', () => {
  for (const c of ops('COPY')) {
    const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) assert.ok(fs.existsSync(path.join(ROOT, src)), `COPY source ${src} exists`);
  }
  const ignore = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const p of ['node_modules', 'dist', '.git', '.gpu-bundle']) assert.ok(ignore.includes(p), `.dockerignore lists ${p}`);
  for (const p of ['weights', 'package-lock.json', 'lib', 'notebooks', 'scripts'])
    assert.ok(!ignore.includes(p), `.dockerignore keeps ${p}`);
});

test('every RUN step is valid shell (bash -n)', () => {
  for (const r of ops('RUN')) {
    const res = spawnSync('bash', ['-n'], { input: r.args, encoding: 'utf8' });
    assert.equal(res.status, 0, `RUN at line ${r.line}: ${res.stderr}`);
  }
});

test('the entry point exports the NVIDIA ICD it finds, says when there is none, and runs the command', () => {
  const script = path.join(ROOT, 'scripts', 'docker-entrypoint.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'icd-'));
  const icd = path.join(dir, 'nvidia_icd.json');
  fs.writeFileSync(icd, '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3.0"}}\n');
  const base = { ...process.env, VK_DRIVER_FILES: '', VK_ICD_FILENAMES: '' };
  const found = spawnSync('bash', [script, 'bash', '-c', 'echo "$VK_DRIVER_FILES"'], {
    env: { ...base, DIFFUSION_ICD_CANDIDATES: `${dir}/absent.json ${icd}` },
    encoding: 'utf8',
  });
  assert.equal(found.status, 0, found.stderr);
  assert.equal(found.stdout.trim(), icd);
  assert.match(found.stderr, /NVIDIA Vulkan driver/);
  const hasGlx = spawnSync('bash', ['-c', 'ldconfig -p | grep -q libGLX_nvidia.so.0'], { encoding: 'utf8' }).status === 0;
  if (!hasGlx) {
    const none = spawnSync('bash', [script, 'bash', '-c', 'echo "[$VK_DRIVER_FILES]"; exit 3'], {
      env: { ...base, DIFFUSION_ICD_CANDIDATES: `${dir}/absent.json` },
      encoding: 'utf8',
    });
    assert.equal(none.status, 3, 'exit status of the command passes through');
    assert.equal(none.stdout.trim(), '[]');
    assert.match(none.stderr, /no NVIDIA Vulkan driver visible/);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
