// Preloaded (node -r) by scripts/gpu-pack.sh: records every file under node_modules that the GPU
// check loads (require, import of CommonJS, readFileSync), so the device bundle holds just those.
'use strict';
const fs = require('node:fs');
const Module = require('node:module');
const out = process.env.GPU_TRACE_OUT;
const seen = new Set();
const origRead = fs.readFileSync;
fs.readFileSync = function (file, ...rest) {
  if (typeof file === 'string' && file.includes('node_modules')) seen.add(file);
  return origRead.call(this, file, ...rest);
};
const origLoad = Module._load;
Module._load = function (request, parent, isMain) {
  try {
    seen.add(Module._resolveFilename(request, parent, isMain));
  } catch {}
  return origLoad.apply(this, arguments);
};
process.on('exit', () => {
  for (const k of Object.keys(require.cache)) seen.add(k);
  const files = [...seen].filter((f) => f.includes('/node_modules/'));
  fs.appendFileSync(out, files.join('\n') + '\n');
});
