/**
 * Command lines for every script and benchmark: a small declarative spec per command, parsed with
 * Node's `util.parseArgs`, validated, typed, and with `--help`.
 *
 *   const { values } = parseCommandLine(process.argv.slice(2), {
 *     count: { type: 'number', integer: true, min: 1, default: 16, help: 'samples to draw' },
 *     out: { type: 'string', valueName: 'DIR', help: 'output folder', defaultHelp: 'runs/samples/<model>' },
 *     gif: { type: 'boolean', help: 'also write the trajectory GIF' },
 *   }, 'usage: npm run sample -- [options]');
 *
 * `--help` / `-h` prints the usage line and one line per option (with its constraint and default)
 * to stdout and exits 0. Anything wrong throws a CliError with one line naming the option and the
 * fix; scripts print it as `error: <line>` and exit 2 (see `exitCodeFor`).
 *
 * Rules: `--name value` and `--name=value` (the value is everything after the first `=`);
 * booleans take no value (`--gif`, or `--gif=true|false`); a value that looks like a flag
 * (`--out --resume`) is refused, unless given inline (`--out=--x`); numbers must be finite decimal
 * numbers, integers where the spec says so, within min/max; `list` options take comma-separated
 * values; the last occurrence of an option wins. Positionals only where the command allows them.
 */
import { parseArgs } from 'node:util';
import type { EngineChoice } from './engine';

/** A bad command line: one line, printed as `error: …`, exit status 2. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The exit status a script uses for an error: 2 for a bad command line, 1 for everything else. */
export function exitCodeFor(e: unknown): number {
  return e instanceof CliError ? 2 : 1;
}

interface OptionBase {
  /** One line for --help. */
  help: string;
  /** What --help shows as the default when it is computed elsewhere (e.g. from another option). */
  defaultHelp?: string;
  /** Placeholder in --help (`--out DIR`); default N for numbers, VALUE for strings, the choices joined with | when there are choices. */
  valueName?: string;
  /** The option must be given. */
  required?: boolean;
  /** Extra validation of the parsed value: returns an error line, or undefined when the value is fine. */
  check?(value: unknown): string | undefined;
}

export interface BooleanOption extends OptionBase {
  type: 'boolean';
}

export interface StringOption extends OptionBase {
  type: 'string';
  /** The allowed values. */
  choices?: readonly string[];
  /** Comma-separated values (`--models class,time`); every item must be a choice when there are choices. */
  list?: boolean;
  default?: string | readonly string[];
}

export interface NumberOption extends OptionBase {
  type: 'number';
  /** Counts, seeds, steps, epochs: whole numbers only. */
  integer?: boolean;
  min?: number;
  max?: number;
  /** Comma-separated numbers (`--D 32,64`), each checked. */
  list?: boolean;
  default?: number | readonly number[];
  /**
   * The value when the flag is given bare (`--calls`, or `--calls` followed by another flag):
   * the option's value is then optional.
   */
  bare?: number;
}

export type OptionSpec = BooleanOption | StringOption | NumberOption;
export type CommandSpec = Record<string, OptionSpec>;

type BaseValue<O> = O extends { type: 'boolean' }
  ? boolean
  : O extends { type: 'number'; list: true }
    ? number[]
    : O extends { type: 'number' }
      ? number
      : O extends { type: 'string'; list: true; choices: readonly (infer C)[] }
        ? C[]
        : O extends { type: 'string'; list: true }
          ? string[]
          : O extends { type: 'string'; choices: readonly (infer C)[] }
            ? C
            : string;

/** The parsed value of one option: present when it has a default, is required, or is a boolean. */
export type OptionValue<O> = O extends { type: 'boolean' }
  ? boolean
  : O extends { default: unknown } | { required: true }
    ? BaseValue<O>
    : BaseValue<O> | undefined;

export type CommandValues<S> = { -readonly [K in keyof S]: OptionValue<S[K]> };

export interface ParsedCommandLine<S> {
  values: CommandValues<S>;
  /** Positional arguments (only where `positionals` allowed them). */
  positionals: string[];
  /** The options given on the command line (not filled in from defaults). */
  given: ReadonlySet<keyof S & string>;
}

export interface ParseOptions {
  /**
   * Positional arguments the command takes (e.g. `{ name: 'NOTEBOOK', max: Infinity }`); none
   * when absent. Only a count check: what they mean is the script's business.
   */
  positionals?: { name: string; min?: number; max?: number };
}

/** The engines `--engine` accepts (lib/engine's choices). */
export const ENGINE_CHOICES = ['auto', 'node', 'node-gpu', 'webgpu', 'wasm', 'cpu'] as const satisfies readonly EngineChoice[];

/** `--engine`, shared by the commands that start an engine; absent means DIFFUSION_ENGINE, else auto. */
export const ENGINE_OPTION = {
  type: 'string',
  choices: ENGINE_CHOICES,
  help: 'TF.js engine to use',
  defaultHelp: '$DIFFUSION_ENGINE, else auto',
} as const satisfies StringOption;

/** --precision: the convolutions' precision on the CPU engines (lib/engine initEngine). */
export const PRECISION_OPTION = {
  type: 'string',
  choices: ['fp32', 'bf16'],
  help: 'convolution precision: bf16 = bf16 inputs, fp32 accumulation and weights (oneDNN addon, CPU with AVX512-BF16 or AMX; else fp32, said in one line)',
  defaultHelp: '$DIFFUSION_PRECISION, else fp32',
} as const satisfies StringOption;

/** Largest seed: seeds 0..2^31−1 give distinct random streams (lib/tensor/random.ts). */
export const SEED_MAX = 2 ** 31 - 1;

/** `--seed`: a whole number (0.5 would silently become 0 in the generator). */
export function seedOption(defaultSeed: number, help = 'random seed'): NumberOption & { default: number } {
  return { type: 'number', integer: true, min: 0, max: SEED_MAX, default: defaultSeed, help };
}

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

function fmt(v: unknown): string {
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

function placeholder(o: OptionSpec): string {
  if (o.type === 'boolean') return '';
  if (o.valueName) return o.valueName;
  if (o.type === 'string' && o.choices) return o.list ? `${o.choices.join(',')}` : o.choices.join('|');
  if (o.type === 'number') return o.list ? 'N,N,…' : 'N';
  return o.list ? 'A,B,…' : 'VALUE';
}

/** The constraint of a number option in words: "integer ≥ 1", "0 ≤ x ≤ 100". */
function numberRule(o: NumberOption): string {
  const kind = o.integer ? 'integer' : 'number';
  const has = (x?: number) => x !== undefined && Number.isFinite(x);
  if (has(o.min) && has(o.max)) return o.integer ? `${kind} ${o.min}..${o.max}` : `${o.min} ≤ x ≤ ${o.max}`;
  if (has(o.min)) return `${kind} ≥ ${o.min}`;
  if (has(o.max)) return `${kind} ≤ ${o.max}`;
  return kind;
}

function optionNames(spec: CommandSpec): string {
  return Object.keys(spec)
    .map((k) => `--${k}`)
    .concat('--help')
    .join(' ');
}

/** The --help text: the usage line(s), then one line per option with its constraint and default. */
export function helpText(spec: CommandSpec, usage: string): string {
  const rows: [string, string][] = [];
  for (const [name, o] of Object.entries(spec)) {
    const ph = placeholder(o);
    const left = `--${name}${ph ? ` ${o.type === 'number' && o.bare !== undefined ? `[${ph}]` : ph}` : ''}`;
    const notes: string[] = [];
    if (o.type === 'number') notes.push(numberRule(o) + (o.list ? ', comma-separated' : ''));
    else if (o.type === 'string' && o.list) notes.push('comma-separated');
    if (o.type === 'number' && o.bare !== undefined) notes.push(`bare: ${o.bare}`);
    if (o.required) notes.push('required');
    else if (o.defaultHelp !== undefined) notes.push(`default: ${o.defaultHelp}`);
    else if (o.type === 'boolean') notes.push('default: off');
    else if (o.default !== undefined) notes.push(`default: ${fmt(o.default)}`);
    else notes.push('default: none');
    rows.push([left, `${o.help} (${notes.join('; ')})`]);
  }
  rows.push(['-h, --help', 'print this help and exit']);
  const w = Math.min(30, Math.max(...rows.map(([l]) => l.length)));
  const lines = rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`);
  return `${usage.trimEnd()}\n\noptions:\n${lines.join('\n')}\n`;
}

function parseNumber(name: string, o: NumberOption, raw: string): number {
  const text = raw.trim();
  if (!NUMBER_RE.test(text)) throw new CliError(`--${name} must be ${o.integer ? 'an integer' : 'a number'}, got "${raw}"`);
  const n = Number(text);
  if (!Number.isFinite(n)) throw new CliError(`--${name} must be a finite number, got ${raw}`);
  if (o.integer && !Number.isInteger(n)) throw new CliError(`--${name} must be an integer, got ${raw}`);
  const lo = o.min ?? -Infinity;
  const hi = o.max ?? Infinity;
  if (n < lo || n > hi) {
    if (Number.isFinite(lo) && Number.isFinite(hi)) throw new CliError(`--${name} must be between ${lo} and ${hi}, got ${raw}`);
    if (Number.isFinite(lo)) throw new CliError(`--${name} must be at least ${lo}, got ${raw}`);
    throw new CliError(`--${name} must be at most ${hi}, got ${raw}`);
  }
  return n;
}

function parseString(name: string, o: StringOption, raw: string): string {
  if (o.choices && !o.choices.includes(raw)) throw new CliError(`--${name} must be one of ${o.choices.join(', ')}, got "${raw}"`);
  return raw;
}

/** Turns one option's text into its value (lists split on commas, every item checked). */
function convert(name: string, o: StringOption | NumberOption, raw: string): unknown {
  if (raw === '') throw new CliError(`--${name} needs a value`);
  if (!o.list) return o.type === 'number' ? parseNumber(name, o, raw) : parseString(name, o, raw);
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new CliError(`--${name} needs comma-separated values without empty items, got "${raw}"`);
  return items.map((s) => (o.type === 'number' ? parseNumber(name, o, s) : parseString(name, o, s)));
}

/** A value that is really the next flag: `--x`, or the help flag `-h`. */
function looksLikeFlag(v: string): boolean {
  return v.startsWith('--') || v === '-h';
}

/**
 * Parses argv (process.argv.slice(2)) against the spec: typed values (defaults filled in), or a
 * CliError with one line. `--help`/`-h` prints helpText(spec, usage) and exits 0.
 */
export function parseCommandLine<const S extends CommandSpec>(
  argv: readonly string[],
  spec: S,
  usage: string,
  opts: ParseOptions = {},
): ParsedCommandLine<S> {
  if ('help' in spec || 'h' in spec) throw new Error('parseCommandLine: --help is built in; do not declare it');
  // Options whose value is optional: a bare flag gets its `bare` value inline, so that parseArgs
  // does not take the next argument as the value.
  const args = argv.slice();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') break;
    const o = args[i].startsWith('--') ? spec[args[i].slice(2)] : undefined;
    if (o?.type === 'number' && o.bare !== undefined) {
      const next = args[i + 1];
      if (next === undefined || !NUMBER_RE.test(next.trim())) args[i] = `${args[i]}=${o.bare}`;
    }
  }
  const nodeOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec)) nodeOptions[name] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
  // strict: false so that every problem is reported in this module's words (the tokens carry
  // what strict mode checks: unknown names, missing and inline values).
  const { tokens } = parseArgs({ args, options: nodeOptions, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    process.stdout.write(helpText(spec, usage));
    process.exit(0);
  }
  const raw: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      if (!opts.positionals) throw new CliError(`unexpected argument "${t.value}"; options are ${optionNames(spec)}`);
      positionals.push(t.value);
      continue;
    }
    const o = spec[t.name];
    if (!o || !t.rawName.startsWith('--')) throw new CliError(`unknown option ${t.rawName}; options are ${optionNames(spec)}`);
    if (o.type === 'boolean') {
      if (t.value === undefined) raw[t.name] = true;
      else if (t.value === 'true' || t.value === 'false') raw[t.name] = t.value === 'true';
      else throw new CliError(`--${t.name} takes no value (got "${t.value}"); write --${t.name} or --${t.name}=false`);
      continue;
    }
    if (t.value === undefined) throw new CliError(`--${t.name} needs a value`);
    if (!t.inlineValue && looksLikeFlag(t.value)) {
      throw new CliError(
        `--${t.name} needs a value (got the flag ${t.value}); a value that starts with -- must be written --${t.name}=${t.value}`,
      );
    }
    raw[t.name] = t.value;
  }
  if (opts.positionals) {
    const { name, min = 0, max = Infinity } = opts.positionals;
    if (positionals.length < min) throw new CliError(`missing ${name}${min > 1 ? ` (needs ${min})` : ''}; see --help`);
    if (positionals.length > max) throw new CliError(`too many arguments (${positionals.join(' ')}): at most ${max} ${name}`);
  }
  const values: Record<string, unknown> = {};
  // The values given first (in the spec's order), then what is missing.
  for (const [name, o] of Object.entries(spec)) {
    const r = raw[name];
    if (r === undefined) continue;
    const v = o.type === 'boolean' ? r === true : convert(name, o, r as string);
    const err = o.check?.(v);
    if (err) throw new CliError(err);
    values[name] = v;
  }
  for (const [name, o] of Object.entries(spec)) {
    if (name in values) continue;
    if (o.required)
      throw new CliError(`--${name} is required${o.type === 'string' && o.choices ? ` (${o.choices.join(', ')})` : ''}; see --help`);
    values[name] = o.type === 'boolean' ? false : Array.isArray(o.default) ? [...o.default] : o.default;
  }
  return { values: values as CommandValues<S>, positionals, given: new Set(Object.keys(raw)) as Set<keyof S & string> };
}
