/**
 * The notebooks' checks (lib/teaching/check.ts): a matching cell passes and hands on the library's
 * function; a mismatch throws in a teaching notebook and, in an exercise notebook, prints what
 * differs and hands on the library's function; a stub prints "not implemented yet"; no tensor leaks.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../lib/engine';
import { NotImplementedYet, compareResults, setExerciseMode, verify, verifyLog } from '../../lib/teaching/check';

const lib = (x: tf.Tensor, k: number) => tf.mul(x, k);

test('compareResults names what differs: shape, values (with the range), a missing key, a non-finite value', async () => {
  await initEngine({ quiet: true });
  tf.tidy(() => {
    const a = tf.tensor2d([[1, 2, 3]]);
    assert.ok(compareResults(a, tf.tensor2d([[1, 2, 3.00001]])).ok);
    assert.match(compareResults(a, tf.tensor2d([1, 2, 3], [3, 1])).problem, /shape \[1,3\] but the library's is \[3,1\]/);
    const v = compareResults(a, tf.tensor2d([[1, 2, 4]]));
    assert.equal(v.ok, false);
    assert.match(v.problem, /1 of 3 values differ; max error 1 at index 2 \(3 vs 4\); value range \[1, 3\] vs the library's \[1, 4\]/);
    assert.match(compareResults({ eps: a }, { eps: a, variance: a }).problem, /result\.variance is missing/);
    assert.ok(compareResults({ eps: a, variance: undefined }, { eps: a, variance: undefined }).ok, 'undefined library keys are skipped');
    assert.match(compareResults(tf.tensor1d([NaN]), tf.tensor1d([0])).problem, /NaN at index 0 \(not finite\)/);
    assert.match(compareResults(2, 3).problem, /2 but the library's is 3/);
    assert.match(compareResults([a], [a, a]).problem, /a list of 1 items but the library's has 2/);
  });
});

test('teaching mode: a match prints one line and returns the library function; a mismatch throws', async () => {
  await initEngine({ quiet: true });
  setExerciseMode(false);
  const lines: string[] = [];
  const x = tf.tensor1d([1, 2, 3]);
  const args = (): [tf.Tensor, number] => [x, 2];
  const before = tf.memory().numTensors;
  const mine = (t: tf.Tensor, k: number) => tf.add(t, tf.mul(t, k - 1));
  const f = verify('scale', mine, lib, args, { against: 'lib.scale', log: (l) => lines.push(l) });
  assert.equal(f, lib);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^✓ scale: the cell's version equals lib\.scale \(max error 0 over \[3\]\)$/);
  assert.throws(
    () => verify('scale', (t: tf.Tensor, k: number) => tf.mul(t, k + 1), lib, args, { against: 'lib.scale', log: (l) => lines.push(l) }),
    /✗ scale: differs from lib\.scale: result: 3 of 3 values differ.*the notebook and lib\/ have drifted apart/,
  );
  assert.equal(tf.memory().numTensors, before, 'verify releases both results');
  x.dispose();
});

test('exercise mode: a stub, an error and a mismatch each print one line and hand on the library function; a pass hands on the student’s', async () => {
  await initEngine({ quiet: true });
  setExerciseMode(true);
  try {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const x = tf.tensor1d([1, 2, 3]);
    const args = (): [tf.Tensor, number] => [x, 2];
    const before = tf.memory().numTensors;
    const stub = (_t: tf.Tensor, _k: number): tf.Tensor => {
      throw new NotImplementedYet('scale (Eq. 1)');
    };
    assert.equal(verify('scale (Eq. 1)', stub, lib, args, { against: 'lib.scale', log }), lib);
    assert.equal(lines.pop(), '… not implemented yet: scale (Eq. 1) (later cells use lib.scale)');
    assert.equal(verifyLog.get('scale (Eq. 1)'), 'not implemented');
    const broken = (t: tf.Tensor, _k: number): tf.Tensor => {
      tf.mul(t, 2); // a tensor made before the error is released too
      throw new TypeError('t.foo is not a function');
    };
    assert.equal(verify('scale (Eq. 1)', broken, lib, args, { against: 'lib.scale', log }), lib);
    assert.equal(lines.pop(), '✗ scale (Eq. 1): your code threw TypeError: t.foo is not a function (later cells use lib.scale)');
    assert.equal(
      verify('scale (Eq. 1)', (t: tf.Tensor, _k: number) => tf.reshape(t, [3, 1]), lib, args, { against: 'lib.scale', log }),
      lib,
    );
    assert.match(lines.pop()!, /^✗ scale \(Eq\. 1\): differs from lib\.scale: result: shape \[3,1\] but the library's is \[3\]$/);
    const good = (t: tf.Tensor, k: number) => tf.mul(k, t);
    assert.equal(verify('scale (Eq. 1)', good, lib, args, { against: 'lib.scale', log }), good);
    assert.equal(verifyLog.get('scale (Eq. 1)'), 'pass');
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  } finally {
    setExerciseMode(false);
  }
});
