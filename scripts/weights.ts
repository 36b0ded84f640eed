/**
 * DeepFloyd IF weights (SPEC §1.0, §3.6).
 *   npm run weights -- if-i-l | if-ii-l | if-i-m | if-ii-m | if-i-xl [--dir DIR]
 *       downloads unet/config.json and the UNet safetensors (fp16 variant) from Hugging Face with
 *       HF_TOKEN, with progress; re-running resumes; sizes (and SHA-256) are verified; then checks.
 *   npm run weights -- embeddings [--dir DIR]
 *       downloads the course's prompt_embeds_dict.pth (no token needed).
 *   npm run weights -- check DIR|FILE [--full]
 *       checks a model folder (config, keys, shapes, completeness; --full reads every value), an
 *       embeddings file, or a Part B .weights / last.ckpt file. One line on failure, exit status 1.
 * Default DIR: models/<repo name> (IF_MODELS_DIR overrides models/).
 */
import * as path from 'node:path';
import { checkModel } from '../lib/models/if/check';
import { downloadFile, downloadIFModel, IF_REPOS, LICENSE_URL } from '../lib/weights/download';
import { modelsRoot } from '../lib/paths';
import { setting } from '../lib/config';
import { CliError, exitCodeFor, parseCommandLine } from '../lib/cli';

const EMBEDDINGS_URL = 'https://cal-cs180.github.io/fa24/hw/proj5/prompt_embeds_dict.pth';

const USAGE = `usage: npm run weights -- <${Object.keys(IF_REPOS).join('|')}|embeddings> [--dir DIR]
       npm run weights -- check DIR|FILE [--full]`;

const COMMANDS = [...Object.keys(IF_REPOS), 'embeddings', 'check'];

const WEIGHTS_OPTIONS = {
  dir: {
    type: 'string',
    valueName: 'DIR',
    help: 'download folder',
    defaultHelp: 'models/<repo name>, embeddings models/; IF_MODELS_DIR replaces models/',
  },
  full: { type: 'boolean', help: 'check: read every value (finite, complete)' },
} as const;

function progressPrinter(): (file: string, done: number, total: number) => void {
  let last = 0;
  const tty = process.stderr.isTTY;
  return (file, done, total) => {
    const now = Date.now();
    if (now - last < (tty ? 200 : 5000) && done < total) return;
    last = now;
    const pct = total ? ((100 * done) / total).toFixed(1) : '?';
    const line = `${file}: ${(done / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB (${pct}%)`;
    if (tty) process.stderr.write(`\r${line}${done >= total ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

function runCheck(target: string, full: boolean): number {
  const r = checkModel(target, { full });
  if (r.ok) {
    console.log(r.line);
    for (const d of r.details) console.log(d);
    return 0;
  }
  console.error(`check failed: ${r.line}`);
  return 1;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandLine(argv, WEIGHTS_OPTIONS, USAGE, { positionals: { name: 'command', max: 2 } });
  const dirArg = values.dir;
  const cmd = pos[0];
  if (!cmd) throw new CliError(`missing command: use ${COMMANDS.join(', ')} (see --help)`);
  if (!COMMANDS.includes(cmd)) throw new CliError(`unknown command "${cmd}": use ${COMMANDS.join(', ')} (see --help)`);
  if (cmd !== 'check' && pos.length > 1) throw new CliError(`${cmd} takes no further argument, got "${pos[1]}"`);
  if (cmd === 'check') {
    if (!pos[1]) throw new CliError('check needs a folder or file: npm run weights -- check DIR|FILE [--full]');
    return runCheck(pos[1], values.full);
  }
  if (cmd === 'embeddings') {
    const dest = path.join(dirArg ?? modelsRoot(), 'prompt_embeds_dict.pth');
    const r = await downloadFile(EMBEDDINGS_URL, dest, { onProgress: progressPrinter() });
    console.log(`${r}: ${dest}`);
    return runCheck(dest, false);
  }
  const repo = IF_REPOS[cmd];
  const token = setting('HF_TOKEN') ?? setting('HUGGING_FACE_HUB_TOKEN');
  if (!token)
    console.error(
      `note: HF_TOKEN is not set; DeepFloyd models are gated (accept the license at ${LICENSE_URL}, then HF_TOKEN=hf_… npm run weights -- ${cmd})`,
    );
  const dir = dirArg ?? path.join(modelsRoot(), repo.split('/')[1]);
  console.log(`downloading ${repo} → ${dir}`);
  await downloadIFModel(repo, dir, { token, onProgress: progressPrinter(), log: (s) => console.log(s) });
  return runCheck(dir, false);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    // Expected failures (network, HTTP, files) are one line, without a stack trace.
    console.error(`error: ${(e as Error).message.split('\n')[0]}`);
    process.exit(exitCodeFor(e));
  },
);
