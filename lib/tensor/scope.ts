/**
 * tf.tidy for async code (a notebook cell that awaits a figure): every tensor created while `fn`
 * runs is released when it settles, except the tensors in its result. Only for code that runs
 * alone (a notebook cell): tensors made concurrently by other async work would be swept too.
 */
import * as tf from '@tensorflow/tfjs-core';

export async function tidyAsync<T>(fn: () => Promise<T> | T): Promise<T> {
  const engine = tf.engine();
  engine.startScope('tidyAsync');
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    engine.endScope();
    throw e;
  }
  engine.endScope(result as tf.TensorContainer);
  return result;
}
