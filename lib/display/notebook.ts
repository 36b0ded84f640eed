/**
 * Talking to the notebook front end from library code.
 *
 * Inside a tslab kernel, the kernel's own `tslab/dist/jupyter.js` module holds the function that
 * sends display messages for the cell being executed (`lastWriteDisplayData`; it is set at the
 * start of every execution, and stdout/stderr are forwarded to the cell the same way). We find
 * that module in Node's require cache rather than importing 'tslab', so the library works with the
 * kernel's copy of tslab whichever node_modules it came from, and costs nothing outside a notebook.
 * tslab's public `display` only sends one MIME type per output; going one level down lets us send
 * bundles (e.g. an interactive chart as text/html plus a static image/png fallback) and display ids
 * for outputs that update in place (Jupyter's update_display_data). The same module of the patched
 * tslab (patches/tslab+1.0.22.patch) takes comm targets (`registerCommTarget`); ./comms.ts has the
 * browser end.
 */
import { setting } from '../config';

/** One Jupyter output: MIME type -> content (binary types base64-encoded; JSON types such as Plotly's as objects). */
export type MimeBundle = Record<string, string | object>;

type WriteDisplayData = (content: { data: MimeBundle; metadata: object; transient: object }, update: boolean) => void;

/** The kernel end of a Jupyter comm, as the patched tslab hands it to a comm target's handler. */
export interface KernelComm {
  readonly commId?: string;
  readonly targetName?: string;
  /** Sends JSON to the front-end's end of the comm (comm_msg). */
  send(data: unknown, metadata?: object): void;
  /** Closes the comm (comm_close). */
  close(data?: unknown): void;
  /** Called with each comm_msg from the front-end; the payload is `msg.content.data`. */
  onMsg: ((msg: { content: { data: unknown } }) => void | Promise<void>) | null;
  /** Called when the front-end closes the comm. */
  onClose: ((msg: unknown) => void) | null;
}

/** Called by the kernel for each comm the front-end opens to the target. */
export type CommTargetHandler = (comm: KernelComm, openMsg: unknown) => void | Promise<void>;

interface TslabJupyterModule {
  lastWriteDisplayData: WriteDisplayData | null;
  /** Only in the patched tslab (patches/tslab+1.0.22.patch). */
  registerCommTarget?: (targetName: string, handler: CommTargetHandler | null) => void;
}

function kernelModule(): TslabJupyterModule | undefined {
  const cache = require.cache;
  for (const key of Object.keys(cache)) {
    if (/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(key)) {
      const mod = cache[key]?.exports as TslabJupyterModule | undefined;
      if (mod && typeof mod.lastWriteDisplayData === 'function') return mod;
    }
  }
  return undefined;
}

/** The comm targets this library registered, per kernel module (so once per kernel). */
const registeredTargets = new WeakMap<object, Set<string>>();

/**
 * Registers `handler` for the comms the front-end opens to `targetName`, once per kernel: later
 * calls with the same name keep the first handler (so re-running a cell does not pile them up).
 * Returns 'registered' or 'already' where the kernel takes comms; 'unsupported' inside a tslab
 * kernel without comm support (unpatched tslab); 'no-kernel' outside a notebook (or with
 * DIFFUSION_DISPLAY=terminal).
 */
export function registerCommTarget(targetName: string, handler: CommTargetHandler): 'registered' | 'already' | 'unsupported' | 'no-kernel' {
  const mod = kernelModule();
  if (!mod || setting('DIFFUSION_DISPLAY') === 'terminal') return 'no-kernel';
  if (typeof mod.registerCommTarget !== 'function') return 'unsupported';
  let names = registeredTargets.get(mod);
  if (!names) registeredTargets.set(mod, (names = new Set()));
  if (names.has(targetName)) return 'already';
  mod.registerCommTarget(targetName, handler);
  names.add(targetName);
  return 'registered';
}

/**
 * True when running inside a tslab Jupyter kernel (a cell is or was being executed).
 * DIFFUSION_DISPLAY=terminal forces false (e.g. to debug display code in a notebook).
 */
export function isNotebook(): boolean {
  if (setting('DIFFUSION_DISPLAY') === 'terminal') return false;
  return kernelModule() !== undefined;
}

/**
 * Sends one output to the current cell. With a displayId, later calls with update=true replace
 * that output in place; metadata goes with it (saved in the notebook, not shown). Returns false
 * (and sends nothing) outside a notebook.
 */
export function sendDisplay(
  data: MimeBundle,
  opts: { displayId?: string; update?: boolean; metadata?: Record<string, unknown> } = {},
): boolean {
  const mod = kernelModule();
  if (!mod || setting('DIFFUSION_DISPLAY') === 'terminal') return false;
  mod.lastWriteDisplayData!(
    { data, metadata: opts.metadata ?? {}, transient: opts.displayId ? { display_id: opts.displayId } : {} },
    Boolean(opts.update && opts.displayId),
  );
  return true;
}

/** Sends a figure's caption as an italic Markdown line (nothing when there is none or outside a notebook). */
export function showCaption(caption?: string): void {
  if (caption) sendDisplay({ 'text/plain': caption, 'text/markdown': `*${caption.replace(/([*_`\\])/g, '\\$1')}*` });
}

/** The one line a show* call prints outside a notebook: `[kind id] title (detail) -> saved file`. */
export function terminalNote(kind: string, meta: { id: string; title: string }, detail: string, saved?: string): void {
  console.log(`[${kind} ${meta.id}] ${meta.title} (${detail})${saved ? ` -> ${saved}` : ''}`);
}

/** Escapes text for HTML/SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
