/**
 * The report's illusions in headless Chromium, from a small figures folder made here through the
 * real show* functions (no Jupyter): anagram tiles flip (transform and caption) on hover, click,
 * Enter and tap; the hybrid slider and its near/far buttons change the displayed width; a GIF
 * shows its poster until hovered or tapped. Also: a manifest of the old format (a GIF without a
 * poster) still renders, the page loads nothing from the network, and the notebook widget's
 * HTML works on its own.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import { initEngine } from '../../lib/engine';
import { showAnagrams, showHybrids, showGif, showImages } from '../../lib/display';
import { illusionWidgetHtml, anagramTileHtml } from '../../lib/display/illusions';
import { buildReport } from '../../lib/report';
import { offlinePage } from '../helpers';

const CHROMIUM = '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} missing (run scripts/setup.sh)`;
const FLIPPED = 'matrix(1, 0, 0, -1, 0, 0)';

async function makeFigures(dir: string): Promise<void> {
  await initEngine({ engine: 'cpu', quiet: true });
  process.env.FIGURES_DIR = dir;
  process.env.FIGURES_NOTEBOOK = 'nb';
  const origLog = console.log;
  console.log = () => undefined;
  try {
    const a = tf.randomUniform([1, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const b = tf.randomUniform([1, 16, 16, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    const h = tf.randomUniform([1, 24, 24, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const frames = [0, 1, 2].map((k) => tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 10 + k) as tf.Tensor4D);
    await showImages(a, { id: 'plain', title: 'Plain image' });
    await showAnagrams(
      [
        { upright: a, uprightPrompt: 'an oil painting of an old man', flippedPrompt: 'an oil painting of people around a campfire' },
        { upright: b, uprightPrompt: 'a handwritten 6', flippedPrompt: 'a handwritten 9' },
      ],
      { id: 'anagrams', title: 'Visual anagrams' },
    );
    await showHybrids([{ image: h, far: h, farPrompt: 'a skull', nearPrompt: 'a waterfall' }], { id: 'hybrids', title: 'Hybrid images' });
    await showGif(frames, { id: 'sampling', title: 'Sampling', scale: 4 });
    tf.dispose([a, b, h, ...frames]);
  } finally {
    console.log = origLog;
    delete process.env.FIGURES_DIR;
    delete process.env.FIGURES_NOTEBOOK;
  }
  // A notebook registered before posters and tiles existed: the same GIF, no poster field.
  const old = path.join(dir, 'old');
  fs.mkdirSync(old);
  fs.copyFileSync(path.join(dir, 'nb', 'sampling.gif'), path.join(old, 'anim.gif'));
  fs.copyFileSync(path.join(dir, 'nb', 'sampling.png'), path.join(old, 'anim.png'));
  fs.writeFileSync(
    path.join(old, 'manifest.jsonl'),
    JSON.stringify({
      notebook: 'old',
      id: 'anim',
      title: 'Old GIF',
      kind: 'gif',
      png: 'old/anim.png',
      gif: 'old/anim.gif',
      width: 78,
      height: 48,
    }) + '\n',
  );
}

/** Opens a page that refuses anything but file: and data: URLs and records errors. */
async function open(browser: Browser, url: string | { html: string }, touch = false) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 }, reducedMotion: 'reduce', hasTouch: touch });
  const page = await ctx.newPage();
  const { errors, offline } = await offlinePage(page);
  if (typeof url === 'string') await page.goto(url, { waitUntil: 'load' });
  else await page.setContent(url.html, { waitUntil: 'load' });
  return { page, errors, offline, close: () => ctx.close() };
}

/** The shown state of anagram tile k: its image's computed transform and its caption. */
async function anagram(page: Page, k: number, want?: 'flipped' | 'upright') {
  const tile = page.locator('.dn-anagram').nth(k);
  if (want) {
    await page.waitForFunction(
      ([k, t]) => getComputedStyle(document.querySelectorAll('.dn-anagram img')[k]).transform === t,
      [k, want === 'flipped' ? FLIPPED : 'none'] as const,
      { timeout: 3000 },
    );
  }
  return {
    transform: await tile.locator('img').evaluate((i) => getComputedStyle(i).transform),
    caption: (await tile.locator('.dn-cap').textContent()) ?? '',
    src: (await tile.locator('img').getAttribute('src')) ?? '',
  };
}

const away = (page: Page) => page.mouse.move(1090, 5);

test(
  'report: anagrams flip on hover, click and tap; the hybrid slider resizes; GIFs play on hover',
  { skip, timeout: 60_000 },
  async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'illusions-report-'));
    const dir = path.join(tmp, 'figures');
    await makeFigures(dir);
    assert.equal(buildReport(dir), 5);
    const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
    assert.ok(!/(src|href)="(https?:)?\/\//.test(html), 'nothing from the network');
    assert.ok(html.includes('dn-anagram') && html.includes('dn-hybrid') && html.includes('dn-gif'));

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const { page, errors, offline, close } = await open(browser, 'file://' + path.join(dir, 'index.html'));
      // Every image loads: plain, 2 anagrams, 1 hybrid, the GIF poster, the old GIF.
      const images = await page.evaluate(() => [...document.images].map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 })));
      assert.equal(images.length, 6, JSON.stringify(images));
      for (const im of images) assert.ok(im.ok, `${im.src} did not load`);

      // Anagram: upright at rest; hover flips it (transform and caption); leaving flips it back.
      const a0 = await anagram(page, 0);
      assert.equal(a0.transform, 'none');
      assert.equal(a0.caption, '↑ upright: an oil painting of an old man');
      assert.match(a0.src, /nb\/anagrams\.anagram-0\.png$/);
      await page.locator('.dn-anagram').first().hover();
      const a1 = await anagram(page, 0, 'flipped');
      assert.equal(a1.caption, '↓ flipped: an oil painting of people around a campfire');
      assert.equal((await anagram(page, 1)).transform, 'none', 'the other tile stays upright');
      await away(page);
      assert.equal((await anagram(page, 0, 'upright')).caption, '↑ upright: an oil painting of an old man');
      // A click swaps the resting view: upright while the mouse is still over it, flipped once it leaves.
      await page.locator('.dn-anagram').first().click();
      assert.match((await anagram(page, 0, 'upright')).caption, /upright/);
      await away(page);
      assert.match((await anagram(page, 0, 'flipped')).caption, /flipped: an oil painting of people/);
      assert.equal(await page.locator('.dn-anagram').first().getAttribute('aria-pressed'), 'true');
      // The keyboard does what the click does.
      await page.locator('.dn-anagram').nth(1).focus();
      await page.keyboard.press('Enter');
      assert.equal((await anagram(page, 1, 'flipped')).caption, '↓ flipped: a handwritten 9');

      // Hybrid: full size (24 px natural → 264 px, pixelated), the slider shrinks it, "far" and "near" jump.
      const hybrid = page.locator('.dn-hybrid').first();
      const img = hybrid.locator('img');
      const width = () => img.evaluate((i) => Math.round(i.getBoundingClientRect().width));
      const rendering = () => img.evaluate((i) => getComputedStyle(i).imageRendering);
      const cap = () => hybrid.locator('.dn-cap').textContent();
      assert.equal(await width(), 264);
      assert.equal(await rendering(), 'pixelated');
      assert.equal(await cap(), 'up close: a waterfall');
      const slider = hybrid.locator('input[type=range]');
      await slider.scrollIntoViewIfNeeded();
      const box = (await slider.boundingBox())!;
      await page.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2);
      const mid = await width();
      assert.ok(mid > 264 * 0.3 && mid < 264 * 0.7, `slider at the middle: ${mid} px`);
      assert.equal(await hybrid.locator('.dn-size').textContent(), `${mid} px`);
      await slider.focus();
      await page.keyboard.press('Home');
      assert.equal(await width(), 16);
      assert.equal(await rendering(), 'auto', 'smooth when smaller than the image');
      assert.equal(await cap(), 'from afar: a skull');
      await hybrid.locator('button[data-to=near]').click();
      assert.equal(await width(), 264);
      await hybrid.locator('button[data-to=far]').click();
      assert.equal(await width(), 16);
      const view = await hybrid.locator('.dn-view').boundingBox();
      assert.equal(Math.round(view!.width), 264, 'the tile keeps its place while the image shrinks');

      // GIF: the poster until hovered, then the GIF, and back.
      const gif = page.locator('.dn-gif img').first();
      const src = async () => (await gif.getAttribute('src')) ?? '';
      assert.match(await src(), /nb\/sampling\.poster\.png$/);
      await gif.hover();
      assert.match(await src(), /nb\/sampling\.gif$/);
      await page.waitForFunction(() => {
        const i = document.querySelector('.dn-gif img') as HTMLImageElement;
        return i.complete && i.naturalWidth > 0 && i.currentSrc.endsWith('.gif');
      });
      await away(page);
      assert.match(await src(), /poster\.png$/);
      // The old manifest's GIF: a plain <img> of the GIF, as before.
      const oldImg = page.locator('#old--anim img');
      assert.match((await oldImg.getAttribute('src')) ?? '', /^old\/anim\.gif$/);
      assert.equal(await page.locator('#old--anim .dn-tile').count(), 0);
      assert.deepEqual(errors, []);
      assert.deepEqual(offline, []);
      await close();

      // Touch screen (no hover): a tap toggles, a second tap toggles back.
      const t = await open(browser, 'file://' + path.join(dir, 'index.html'), true);
      await t.page.locator('.dn-anagram').first().tap();
      assert.match((await anagram(t.page, 0, 'flipped')).caption, /flipped/);
      await t.page.locator('.dn-anagram').first().tap();
      assert.match((await anagram(t.page, 0, 'upright')).caption, /upright/);
      await t.page.locator('.dn-gif').first().tap();
      assert.match((await t.page.locator('.dn-gif img').first().getAttribute('src')) ?? '', /sampling\.gif$/);
      assert.deepEqual(t.errors, []);
      await t.close();

      // The notebook widget's HTML on its own (its script finds its tiles from its <script> element).
      const png = fs.readFileSync(path.join(dir, 'nb', 'anagrams.anagram-1.png')).toString('base64');
      const tile = anagramTileHtml({
        src: `data:image/png;base64,${png}`,
        width: 16,
        height: 16,
        uprightPrompt: 'six',
        flippedPrompt: 'nine',
      });
      const w = await open(browser, { html: `<!DOCTYPE html><body>${illusionWidgetHtml([tile])}</body>` });
      await w.page.locator('.dn-anagram').hover();
      assert.equal((await anagram(w.page, 0, 'flipped')).caption, '↓ flipped: nine');
      assert.deepEqual(w.errors, []);
      await w.close();
    } finally {
      await browser.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
);
