/**
 * The equations the code cites live in the repository (docs/equations.md): every label a comment in
 * lib/ cites ("SPEC §1.4", "SPEC-flow §3.3", "Eq. A.3", "Alg. B.2") has its entry there, and every
 * lib/ function the page names as an implementation exists.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const doc = fs.readFileSync(path.join(root, 'docs', 'equations.md'), 'utf8');

function libSources(dir = path.join(root, 'lib')): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? libSources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The labels a source cites, normalized to the page's spelling. */
export function citedLabels(src: string): string[] {
  const out: string[] = [];
  const rules: Array<[RegExp, (m: RegExpExecArray) => string]> = [
    [/SPEC-flow(?:\.md)?,? (?:Part [AB] )?§(\d+(?:\.\d+)*)/g, (m) => `SPEC-flow §${m[1]}`],
    [/SPEC §(\d+(?:\.\d+)*)/g, (m) => `SPEC §${m[1]}`],
    [/Eqs?\. ([AB]\.\d+)/g, (m) => `Eq. ${m[1]}`],
    [/(?:Alg\.|Algorithms?) ([AB]\.\d+)/g, (m) => `Alg. ${m[1]}`],
  ];
  for (const [re, label] of rules) for (let m = re.exec(src); m; m = re.exec(src)) out.push(label(m));
  return out;
}

test('every equation, algorithm and spec section cited in lib/ has its entry in docs/equations.md', () => {
  const missing = new Map<string, string>();
  for (const f of libSources()) {
    for (const l of citedLabels(fs.readFileSync(f, 'utf8'))) if (!doc.includes(l)) missing.set(l, path.relative(root, f));
  }
  assert.deepEqual(
    [...missing].map(([l, f]) => `${l} (cited in ${f})`),
    [],
  );
  assert.ok(citedLabels('x (SPEC §1.4; Eq. A.3, Alg. B.2, SPEC-flow §3.3)').length === 4, 'the label pattern finds citations');
});

test('every lib/ file the page names exists, and every name it puts in code font is in lib/', () => {
  const files = [...doc.matchAll(/`(lib\/[\w/.-]+\.ts)`/g)].map((m) => m[1]);
  assert.ok(files.length > 20);
  for (const f of files) assert.ok(fs.existsSync(path.join(root, f)), `${f} is named in docs/equations.md but does not exist`);
  const all = libSources()
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
  const names = [...doc.matchAll(/`([a-z][A-Za-z0-9]+|[A-Z][A-Za-z0-9]+(?:Scheduler|_CONFIG))`/g)].map((m) => m[1]);
  // A name the page puts in code font is an export, a method, an object key or a string value of lib/.
  const known = (n: string) =>
    [`export (?:async )?(?:function|class|const|interface|type) ${n}\\b`, `\\b${n}\\(`, `\\b${n}\\??:`, `'${n}'`].some((p) =>
      new RegExp(p).test(all),
    );
  const unknown = names.filter((n) => !known(n));
  assert.deepEqual(unknown, []);
});
