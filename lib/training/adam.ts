/**
 * Adam (Kingma & Ba), PyTorch semantics: β1 0.9, β2 0.999, eps 1e-8, bias-corrected,
 * p ← p − lr · m̂ / (√v̂ + eps). Its state (m, v, step) is a flat name → tensor map for checkpoints.
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamSteps, fusedAdamAvailable } from '../tensor/fusedOps';

export class Adam {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** Number of updates taken so far (PyTorch's state["step"]). */
  step = 0;

  constructor(
    params: Map<string, tf.Variable>,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {
    for (const [name, p] of params) {
      // tidy frees the zerosLike values the variables were made from.
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
    }
  }

  /** One update of every parameter that has a gradient. grads: name → gradient like the param. */
  update(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    this.step++;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    const state = (name: string) => ({ p: params.get(name)!, m: this.m.get(name)!, v: this.v.get(name)! });
    if (fusedAdamAvailable()) {
      // Same update in one pass per parameter, or over all of them (lib/tensor/fusedOps.ts), not
      // 13 kernel launches per parameter.
      const list = [...grads].map(([name, g]) => ({ ...state(name), g }));
      const updated = adamSteps(list, this.beta1, this.beta2, this.eps, lr / bc1, Math.sqrt(bc2));
      list.forEach(({ p, m, v }, k) => {
        const [p1, m1, v1] = updated[k]!;
        m.assign(m1!);
        v.assign(v1!);
        p.assign(p1!);
        tf.dispose([p1!, m1!, v1!]);
      });
      return;
    }
    for (const [name, g] of grads) {
      const { p, m, v } = state(name);
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), this.eps);
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(p, tf.mul(tf.div(m1, denom), lr / bc1)));
      });
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
