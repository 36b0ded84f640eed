#!/usr/bin/env node
// Builds the optional oneDNN addon (native/) with node-gyp against the system's libdnnl-dev.
// Run by `npm install` (postinstall) and `npm run build:native`. It never fails the install: where
// the library, a compiler or the Node headers are missing, it writes one line saying why to
// native/build-status.txt, prints it, and exits 0; the engine then keeps its own kernels and
// repeats that line. `--force` rebuilds an addon that is already built.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'native');
const addon = path.join(dir, 'build', 'Release', 'diffusion_native.node');
const statusFile = path.join(dir, 'build-status.txt');
const force = process.argv.includes('--force');

function finish(line, ok) {
  fs.writeFileSync(statusFile, `${line}\n`);
  console.log(`build-native: ${line}`);
  process.exit(ok || !force ? 0 : 1);
}

if (process.env.DIFFUSION_NATIVE === '0') finish('skipped: DIFFUSION_NATIVE=0', true);
if (fs.existsSync(addon) && !force) finish('already built (npm run build:native rebuilds it)', true);

const gyp = (() => {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    return undefined;
  }
})();
if (!gyp) finish('node-gyp is not installed (npm ci installs it)', false);

// Headers of the running Node where its package installed them (Debian, Homebrew, nvm): no download.
const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = [gyp, 'rebuild', '--directory', dir];
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
if (r.status === 0 && fs.existsSync(addon)) finish('built native/build/Release/diffusion_native.node (oneDNN convolutions)', true);

// The first compiler or linker error is the reason a person can act on.
const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
fs.writeFileSync(path.join(dir, 'build.log'), out);
const lines = out.split('\n');
const err =
  lines.find((l) => /dnnl\.hpp.*No such file|cannot find -ldnnl/.test(l)) ??
  lines.find((l) => /(fatal )?error[: ]/i.test(l) && !/^gyp (info|ERR! (stack|System|command|cwd|node|not ok))/.test(l)) ??
  `node-gyp exited with ${r.status ?? r.signal}`;
const hint = /dnnl/.test(err) ? 'install libdnnl-dev (Debian/Ubuntu) or onednn (Homebrew)' : 'see native/build.log';
finish(`not built: ${err.trim().slice(0, 200)}; ${hint}`, false);
