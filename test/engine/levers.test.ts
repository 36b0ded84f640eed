/** The engine's performance levers: defaults, scoped changes that always restore, validation. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { initEngine } from '../../lib/engine';
import { DEFAULT_LEVERS, LEVER_NAMES, levers, setLevers, withLevers } from '../../lib/engine/levers';

test('every lever is on by default and levers() is read-only', () => {
  assert.deepEqual(levers(), DEFAULT_LEVERS);
  assert.ok(LEVER_NAMES.length === 16 && LEVER_NAMES.every((n) => DEFAULT_LEVERS[n] === true));
  assert.throws(() => {
    (levers() as { reduce: boolean }).reduce = false;
  }, TypeError);
});

test('withLevers sets levers for the scope of a sync function and restores them on return and on throw', () => {
  const inside = withLevers({ reduce: false, foldBatchNorm: false }, () => ({ ...levers() }));
  assert.equal(inside.reduce, false);
  assert.equal(inside.foldBatchNorm, false);
  assert.equal(inside.phases, true);
  assert.deepEqual(levers(), DEFAULT_LEVERS);
  assert.throws(
    () =>
      withLevers({ zeroCopy: false }, () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.deepEqual(levers(), DEFAULT_LEVERS);
  // Nested scopes restore in order; undefined entries leave a lever as it is.
  withLevers({ bnFast: false }, () => {
    withLevers({ geluGrad: false, bnFast: undefined }, () => {
      assert.equal(levers().bnFast, false);
      assert.equal(levers().geluGrad, false);
    });
    assert.equal(levers().geluGrad, true);
    assert.equal(levers().bnFast, false);
  });
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});

test('withLevers keeps levers set until a returned promise settles, then restores them (resolve and reject)', async () => {
  const p = withLevers({ copyLoops: false }, async () => {
    await new Promise((r) => setTimeout(r, 5));
    return levers().copyLoops;
  });
  assert.equal(levers().copyLoops, false, 'still set while the promise is pending');
  assert.equal(await p, false);
  assert.deepEqual(levers(), DEFAULT_LEVERS);
  await assert.rejects(
    withLevers({ singlePixel: false }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      throw new Error('async boom');
    }),
    /async boom/,
  );
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});

test('unknown lever names and non-boolean values are refused, and change nothing', () => {
  assert.throws(() => withLevers({ foldBN: false } as never, () => 0), /unknown lever "foldBN".*foldBatchNorm/);
  assert.throws(() => withLevers({ reduce: 0 } as never, () => 0), /true or false/);
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});

test('initEngine({ levers }) sets the process-wide starting levers', async () => {
  try {
    await initEngine({ engine: 'cpu', quiet: true, levers: { fusedBias: false } });
    assert.equal(levers().fusedBias, false);
    assert.equal(levers().phases, true);
    assert.equal(
      withLevers({ fusedBias: true }, () => levers().fusedBias),
      true,
    );
    assert.equal(levers().fusedBias, false);
  } finally {
    setLevers(DEFAULT_LEVERS);
  }
  assert.deepEqual(levers(), DEFAULT_LEVERS);
});
