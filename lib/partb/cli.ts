/** A tiny --flag parser for the Part B commands: --name value, --flag (boolean), --name=value. */
export type ArgType = 'string' | 'number' | 'boolean';

export function parseArgs(argv: string[], spec: Record<string, ArgType>): Record<string, string | number | boolean | undefined> {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"; options are ${Object.keys(spec).map((k) => `--${k}`).join(' ')}`);
    let [name, val] = a.slice(2).split('=', 2) as [string, string | undefined];
    const type = spec[name];
    if (!type) throw new Error(`unknown option --${name}; options are ${Object.keys(spec).map((k) => `--${k}`).join(' ')}`);
    if (type === 'boolean') {
      out[name] = val === undefined ? true : val !== 'false';
      continue;
    }
    if (val === undefined) {
      val = argv[++i];
      if (val === undefined) throw new Error(`option --${name} needs a value`);
    }
    if (type === 'number') {
      const n = Number(val);
      if (!Number.isFinite(n)) throw new Error(`option --${name} needs a number, got "${val}"`);
      out[name] = n;
    } else out[name] = val;
  }
  return out;
}
