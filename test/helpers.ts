/** Small shared test helpers. */

/** Seeded uniform [0,1) generator (mulberry32), for test data independent of TF.js. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * In a classic Jupyter Notebook page: opens `url`, waits until its kernel is connected, and runs
 * every cell (the browser tests of the drawing canvas and of kernel comms).
 */
export async function runAllCellsInPage(page: import('playwright-core').Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const J = (window as any).Jupyter;
      return J?.notebook?.kernel?.is_connected?.() && J.notebook.kernel_selector;
    },
    undefined,
    { timeout: 60_000 },
  );
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  await page.evaluate(() => (window as any).Jupyter.notebook.execute_all_cells());
}
