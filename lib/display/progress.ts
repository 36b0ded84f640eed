/**
 * Progress indicator: one line updated in place in a notebook (a Jupyter output with a display
 * id, replaced through update_display_data, so the executed notebook keeps only the final line),
 * a bar with rate and time left on stderr in a terminal. Redraws at most 5 times a second.
 */
import { isNotebook, sendDisplay, escapeXml } from './notebook';

export interface Progress {
  /** Marks n more items done (default 1); info is shown after the bar (e.g. "loss 0.031"). */
  tick(n?: number, info?: string): void;
  /** Draws the final state (and ends the terminal line). Safe to call twice. */
  done(): void;
}

/** h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Items per second, with one decimal below 100. */
export function formatRate(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0) return '? it/s';
  if (rate < 1) return `${formatDuration(1 / rate)}/it`;
  return `${rate < 100 ? rate.toFixed(1) : Math.round(rate)} it/s`;
}

/**
 * One progress line: "label [#####.....] 50/100 50% 12.3 it/s 0:04 left info".
 * Pure function of its inputs (tested).
 */
export function formatProgress(
  label: string,
  done: number,
  total: number,
  elapsedS: number,
  info = '',
  width = 24,
  finished = false,
): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(frac * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const rate = elapsedS > 0 ? done / elapsedS : NaN;
  const time = finished ? `${formatDuration(elapsedS)} total` : `${formatDuration(rate > 0 ? (total - done) / rate : NaN)} left`;
  const pct = `${Math.floor(frac * 100)}%`;
  return `${label} [${bar}] ${done}/${total} ${pct} ${formatRate(rate)} ${time}${info ? ' ' + info : ''}`;
}

let counter = 0;

/** Starts a progress indicator over `total` items. */
export function progress(total: number, label: string): Progress {
  if (!(Number.isFinite(total) && total >= 0)) throw new Error(`progress: total must be a number >= 0, got ${total}.`);
  const nb = isNotebook();
  const displayId = `progress-${process.pid}-${Date.now()}-${++counter}`;
  const start = Date.now();
  let count = 0;
  let info = '';
  let lastDraw = 0;
  let shown = false;
  let finished = false;
  const tty = Boolean(process.stderr.isTTY);
  // Without a TTY (logs, CI) \r redraws would pile up: print a plain line every 10 s instead.
  const minInterval = nb || tty ? 200 : 10000;

  const draw = (final: boolean) => {
    const line = formatProgress(label, count, total, (Date.now() - start) / 1000, info, 24, final);
    if (nb) {
      const pct = total > 0 ? Math.min(1, count / total) : 0;
      const html = `<div style="font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere"><progress value="${pct}" max="1" style="width:12em;vertical-align:middle"></progress> ${escapeXml(line)}</div>`;
      sendDisplay({ 'text/plain': line, 'text/html': html }, { displayId, update: shown });
      shown = true;
    } else if (tty) {
      process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    } else {
      process.stderr.write(line + '\n');
    }
  };

  return {
    tick(n = 1, i?: string) {
      if (finished) return;
      count += n;
      if (i !== undefined) info = i;
      const now = Date.now();
      if (now - lastDraw >= minInterval) {
        lastDraw = now;
        draw(false);
      }
    },
    done() {
      if (finished) return;
      finished = true;
      draw(true);
    },
  };
}

/**
 * `fn` with a progress line that advances once per call and finishes (leaving its summary line) at
 * the `total`-th: the progress of a loop written in a notebook cell (e.g. a noise estimate called
 * once per sampling step) without touching the loop. Calls after the total pass straight through.
 */
export function progressPerCall<A extends unknown[], R>(fn: (...args: A) => R, total: number, label: string): (...args: A) => R {
  const bar = progress(total, label);
  let calls = 0;
  return (...args: A) => {
    const out = fn(...args);
    if (calls < total) {
      calls++;
      bar.tick();
      if (calls === total) bar.done();
    }
    return out;
  };
}

/** Options of one timed section. */
export interface SectionOptions {
  /** Steps the section's loop makes (calls of the `counted` function); 0 or absent: no progress line. */
  steps?: number;
  /** What the section does, for the progress line (e.g. "iterative denoising"). */
  what?: string;
}

/**
 * Times a notebook's sections and shows one progress line while a section runs. The line counts
 * calls of what the loops call once per step, wrapped once with `counted` or `countCalls` (Part A:
 * the model's predictions), so the loops written in the cells stay as they are.
 */
export class SectionTimer {
  /** Seconds of each section run so far, by name. */
  readonly seconds: Record<string, number> = {};
  private active: Progress | undefined;

  /** `fn` unchanged, except that each call advances the running section's progress line. */
  counted<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A) => {
      const out = fn(...args);
      this.active?.tick();
      return out;
    };
  }

  /**
   * `target` (a Proxy of it) with the named methods counted like `counted` functions; every other
   * property as it is. Part A counts its model's predict and predictMany: one call per reverse step,
   * since guidance batches its branches into one predictMany call.
   */
  countCalls<T extends object>(target: T, methods: ReadonlyArray<keyof T>): T {
    const wrapped = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get: (obj, key) => {
        const value: unknown = Reflect.get(obj, key, obj);
        if (typeof value !== 'function') return value;
        if (!methods.includes(key as keyof T)) return (value as (...a: unknown[]) => unknown).bind(obj);
        if (!wrapped.has(key)) wrapped.set(key, this.counted((value as (...a: unknown[]) => unknown).bind(obj)));
        return wrapped.get(key);
      },
    });
  }

  /** Runs `fn` as the section `name` (timed; with a progress line over opts.steps) and returns its value. */
  run<R>(name: string, fn: () => R, opts: SectionOptions = {}): R {
    const steps = opts.steps ?? 0;
    const outer = this.active;
    const bar = steps > 0 ? progress(steps, `${name}${opts.what ? ` ${opts.what}` : ''}: step`) : undefined;
    if (bar) this.active = bar;
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.active = outer;
      bar?.done();
      this.seconds[name] = (performance.now() - t0) / 1000;
    }
  }

  /** "1.1 0.2 s, 1.4 3.1 s, …". */
  summary(): string {
    return Object.entries(this.seconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
      .join(', ');
  }
}
