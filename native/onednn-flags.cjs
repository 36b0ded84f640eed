#!/usr/bin/env node
// Compiler and linker flags for the oneDNN the addon builds against (binding.gyp runs this).
// native/onednn/install, made by scripts/build-onednn.sh (oneDNN 3.7.2 built from Debian's source
// package), when it is there; else the system's libdnnl-dev (oneDNN 2.6.3 on Debian 12).
// `include`: the include directory (nothing for the system's); `libs`: the linker flags.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const install = path.join(__dirname, 'onednn', 'install');
const local = fs.existsSync(path.join(install, 'include', 'dnnl.hpp'));
const lib = path.join(install, 'lib');
if (process.argv[2] === 'include') console.log(local ? path.join(install, 'include') : '');
// (binding.gyp's rpath, relative to the addon, finds the local library at run time.)
else if (process.argv[2] === 'libs') console.log(local ? `-L${lib} -ldnnl` : '-ldnnl');
else {
  console.error('usage: node native/onednn-flags.cjs include|libs');
  process.exit(2);
}
