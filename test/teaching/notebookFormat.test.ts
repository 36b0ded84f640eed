/**
 * Notebook cells are formatted like the library (lib/teaching/notebookFormat.ts): every
 * notebooks/*.ipynb as committed, and the formatter itself on a hand-written case.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CELL_LINE_LIMIT,
  CELL_WIDTH,
  cellOptions,
  formatCell,
  formatNotebook,
  longLines,
  teachingNotebooks,
} from '../../lib/teaching/notebookFormat';
import { cellSource } from '../../lib/teaching/exercises';
import type { Notebook } from '../../lib/teaching/exercises';

test('formatCell: the project style at the cell width, top-level await kept; a cell that does not parse is named', async () => {
  const options = await cellOptions();
  assert.equal(options.printWidth, CELL_WIDTH);
  assert.equal(await formatCell('const x = await f( "a",1 )\nx', options), "const x = await f('a', 1);\nx;");
  const long = `const total = ${Array.from({ length: 12 }, (_, i) => `someValue${i}`).join(' + ')};`;
  const wrapped = await formatCell(long, options);
  assert.ok(long.length > CELL_WIDTH && wrapped.split('\n').length > 1, wrapped);
  assert.ok(
    wrapped.split('\n').every((l) => l.length <= CELL_WIDTH),
    wrapped,
  );
  await assert.rejects(formatCell('const = 3', options, 'x.ipynb cell 4'), /^Error: x\.ipynb cell 4: /);
  assert.deepEqual(longLines(`short\n${'x'.repeat(CELL_LINE_LIMIT)}\n${'γ'.repeat(CELL_LINE_LIMIT + 1)}`), [[3, CELL_LINE_LIMIT + 1]]);
});

test('every notebook cell is formatted (npm run format:notebooks fixes it)', async () => {
  const files = teachingNotebooks();
  assert.ok(files.length >= 5, `notebooks: ${files.join(', ')}`);
  for (const file of files) {
    const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook;
    const { changed } = await formatNotebook(nb, path.basename(file));
    assert.deepEqual(changed, [], `${path.basename(file)}: cells ${changed.join(', ')} are not formatted: run npm run format:notebooks`);
    const long = nb.cells.flatMap((c, i) =>
      c.cell_type === 'code' ? longLines(cellSource(c)).map(([l, n]) => `cell ${i} line ${l} (${n})`) : [],
    );
    assert.deepEqual(long, [], `${path.basename(file)}: lines over ${CELL_LINE_LIMIT} characters (wrap the comment or string)`);
  }
});
