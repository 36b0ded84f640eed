/**
 * Jupyter comms between a cell output's script and the tslab kernel (patched tslab: see
 * patches/tslab+1.0.22.patch), front-end neutral.
 *
 * Kernel side: `registerCommTarget(name, (comm) => …)` (from ./notebook, re-exported here)
 * registers a comm target once per kernel. Browser side: BROWSER_COMM is the source of a function
 *     openComm(target, root, onMsg, onClose) -> send | null
 * to paste into an output's <script>. It opens a comm to `target` through whatever front-end shows
 * the output and returns `send(data)` (with `send.close()` and `send.frontEnd`), or null where the
 * page has no handle on the kernel:
 *  - classic Notebook 6 / nbclassic: `Jupyter.notebook.kernel.comm_manager.new_comm` (tested in
 *    headless Chromium: test/kernel/comms.test.ts, test/partA/canvas.test.ts);
 *  - JupyterLab / Notebook 7, when the app is reachable (`window.jupyterapp`, which they set when
 *    started with --expose-app-in-browser): the notebook panel whose node holds `root` (else the
 *    current widget), its `sessionContext.session.kernel.createComm` (tested in Notebook 7.6:
 *    test/teaching/frontends.test.ts);
 *  - VS Code gives output scripts no kernel connection: null.
 * `onMsg(data)` gets each message's data; `onClose()` runs when the kernel closes the comm (e.g. it
 * has no such target: tslab answers comm_open for an unknown target with comm_close).
 */
export { registerCommTarget, type KernelComm, type CommTargetHandler } from './notebook';

export const BROWSER_COMM = `function openComm(target, root, onMsg, onClose) {
  function wrap(send, close, frontEnd) { send.close = close; send.frontEnd = frontEnd; return send; }
  try {
    var J = window.Jupyter;
    if (J && J.notebook && J.notebook.kernel && J.notebook.kernel.comm_manager) {
      var cc = J.notebook.kernel.comm_manager.new_comm(target, {});
      cc.on_msg(function (msg) { onMsg(msg.content.data); });
      cc.on_close(function () { onClose(); });
      return wrap(function (data) { cc.send(data); }, function () { try { cc.close(); } catch (e) {} }, 'classic');
    }
  } catch (e) { if (window.console) console.warn('openComm (classic Notebook):', e); }
  try {
    var app = window.jupyterapp || window.jupyterlab;
    if (app && app.shell && typeof app.shell.widgets === 'function') {
      var it = app.shell.widgets('main'), widgets = [], w;
      if (it && typeof it[Symbol.iterator] === 'function') widgets = Array.from(it);
      else if (it && typeof it.next === 'function') while ((w = it.next()) !== undefined) widgets.push(w); // lumino 1 (JupyterLab 3)
      var panel = widgets.find(function (x) { return x && x.node && x.node.contains(root); }) || app.shell.currentWidget;
      var sc = panel && (panel.sessionContext || (panel.context && panel.context.sessionContext));
      var kernel = sc && sc.session && sc.session.kernel;
      if (kernel && typeof kernel.createComm === 'function') {
        var lc = kernel.createComm(target);
        lc.onMsg = function (msg) { onMsg(msg.content.data); };
        lc.onClose = function () { onClose(); };
        lc.open({});
        return wrap(function (data) { lc.send(data); }, function () { try { if (!lc.isDisposed) lc.close(); } catch (e) {} }, 'lab');
      }
    }
  } catch (e) { if (window.console) console.warn('openComm (JupyterLab):', e); }
  return null;
}`;
