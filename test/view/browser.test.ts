import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../src/data/index.ts';
import { exportViewer, startViewer } from '../../src/view/index.ts';
import { writeSharpPyramid } from '../data/fixtures.ts';
import { tempDir, missingTool } from '../helpers.ts';
import { slideWithHeatmap } from './helpers.ts';

/**
 * The viewer in a real browser: Debian's Chromium, headless, driven by puppeteer-core (nothing downloads
 * a browser). Tiles are checked pixel for pixel against the slide reader at two zoom levels.
 */
const CHROMIUM = '/usr/bin/chromium';
const dir = tempDir();
let browser: Browser;
let page: Page;
let made: Awaited<ReturnType<typeof slideWithHeatmap>>;
let server: { url: string; close(): Promise<void> };

async function settle(p: Page): Promise<void> {
  // OpenSeadragon updates once per animation frame: after a forced redraw, its next frames ask for the
  // new level's tiles. Counted in frames, not milliseconds (a busy machine only makes frames later):
  // settled when every item is fully loaded and drawn in three frames in a row. A page that never
  // settles fails on the test's own timeout.
  await p.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const v = (window as any).gradelabViewer.viewer;
        v.forceRedraw();
        let frames = 0;
        let calm = 0;
        const check = () => {
          if (++frames > 2) {
            const n = v.world.getItemCount();
            let loaded = n > 0;
            for (let i = 0; i < n; i++) loaded &&= v.world.getItemAt(i).getFullyLoaded();
            calm = loaded && !v.world.needsDraw() ? calm + 1 : 0;
            if (calm >= 3) return resolve();
          }
          requestAnimationFrame(check);
        };
        requestAnimationFrame(check);
      }),
  );
}

/** Zooms so one screen pixel is 1/scale image pixels, centred on image point (x, y). */
async function zoomTo(p: Page, scale: number, x: number, y: number): Promise<void> {
  await p.evaluate(
    (s, cx, cy) => {
      const v = (window as any).gradelabViewer.viewer;
      const item = v.world.getItemAt(0);
      v.viewport.zoomTo(item.imageToViewportZoom(s), null, true);
      v.viewport.panTo(item.imageToViewportCoordinates(cx, cy), true);
      v.forceRedraw();
    },
    scale,
    x,
    y,
  );
  await settle(p);
}

/** The screen's RGB pixels in a box centred on the viewer's centre. */
async function centre(p: Page, side: number): Promise<{ data: Buffer; left: number; top: number }> {
  const box = (await (await p.$('#osd'))!.boundingBox())!;
  const left = Math.round(box.x + box.width / 2 - side / 2);
  const top = Math.round(box.y + box.height / 2 - side / 2);
  const png = await p.screenshot({ clip: { x: left, y: top, width: side, height: side } });
  const data = await sharp(png).removeAlpha().raw().toBuffer();
  return { data, left, top };
}

/**
 * The share of 10 x 10 blocks of the screen that equal the reference exactly at some shift within 2 px.
 * OpenSeadragon places each Deep Zoom tile at its own rounded offset, so tiles may sit a pixel apart
 * while their pixels are exact; blocks across such a seam do not match. A wrong level, resampling or
 * misplaced tile leaves almost no block matching (the slide is noise).
 */
function exactShare(screen: Buffer, side: number, ref: Uint8Array, refSide: number): number {
  const pad = (refSide - side) / 2;
  let exact = 0;
  let blocks = 0;
  for (let by = 0; by + 10 <= side; by += 10) {
    for (let bx = 0; bx + 10 <= side; bx += 10) {
      blocks++;
      search: for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          let same = true;
          for (let y = by; y < by + 10 && same; y++) {
            for (let x = bx; x < bx + 10 && same; x++) {
              for (let c = 0; c < 3; c++)
                if (screen[(y * side + x) * 3 + c] !== ref[((y + pad + dy) * refSide + x + pad + dx) * 3 + c]) same = false;
            }
          }
          if (same) {
            exact++;
            break search;
          }
        }
      }
    }
  }
  return exact / blocks;
}

describe.skipIf(missingTool(existsSync(CHROMIUM)))('the viewer in headless Chromium', () => {
  beforeAll(async () => {
    made = await slideWithHeatmap(dir);
    server = await startViewer([{ slide: made.slide, heatmap: made.heatmap, heatmapDir: made.heatmapDir }], { port: 0, format: 'png' });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--no-first-run',
        '--force-device-scale-factor=1',
      ],
    });
    page = await browser.newPage();
    page.setDefaultTimeout(0);
    await page.setViewport({ width: 1300, height: 800, deviceScaleFactor: 1 });
    await page.goto(`${server.url}?smooth=0#overlay=none`, { waitUntil: 'load' });
    await page.evaluate(() => (window as any).gradelabViewer.ready);
    await settle(page);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await made?.slide.close();
  });

  it('lists the slide with its referral tags and shows its tiles as the slide reader reads them, at 1:1 and 1:4', async () => {
    expect(await page.$eval('#list', (e) => e.textContent)).toMatch(/view-slide.*AI ISUP 3 \/ reference ISUP 1.*discordant.*OOD/s);
    await zoomTo(page, 1, 500, 350);
    const side = 120;
    const full = await centre(page, side);
    const ref = await made.slide.readRegion(0, 500 - (side + 4) / 2, 350 - (side + 4) / 2, side + 4, side + 4);
    expect(exactShare(full.data, side, ref.data, side + 4)).toBeGreaterThan(0.8);
    await zoomTo(page, 0.25, 500, 350);
    const quarter = await centre(page, 60);
    // At 1:4 the browser shows the pyramid's level with downsample 4 (250 x 175) pixel for pixel.
    const ref4 = await made.slide.readRegion(2, 500 - 4 * 32, 350 - 4 * 32, 64, 64);
    expect(exactShare(quarter.data, 60, ref4.data, 64)).toBeGreaterThan(0.8);
  });

  it('an overlay changes the rendered pixels; choosing none restores them', async () => {
    await zoomTo(page, 1, 400, 400);
    const before = (await centre(page, 100)).data;
    await page.evaluate(() => (window as any).gradelabViewer.setOverlay('grade'));
    await settle(page);
    const after = (await centre(page, 100)).data;
    let diff = 0;
    for (let i = 0; i < before.length; i++) diff += Math.abs(before[i] - after[i]);
    expect(diff / before.length).toBeGreaterThan(5);
    expect(await page.$eval('#legend', (e) => e.textContent)).toContain('ISUP 4');
    await page.evaluate(() => (window as any).gradelabViewer.setOverlay('none'));
    await settle(page);
    expect(Buffer.compare((await centre(page, 100)).data, before)).toBe(0);
  });

  it('a click on a tile shows its probabilities and scores', async () => {
    await zoomTo(page, 1, 400, 400);
    const box = (await (await page.$('#osd'))!.boundingBox())!;
    // Image point (400, 400) is at the centre: tile 4 (300..500 x 300..500), grade 4, not flagged.
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(() => /ISUP 4/.test(document.getElementById('info')!.textContent ?? ''), { timeout: 0 });
    const info = await page.$eval('#info', (e) => e.textContent);
    expect(info).toMatch(/tile at \(300, 300\): tile score toward ISUP 4/);
    expect(info).toContain('75.0%');
    expect(info).toMatch(/OOD score 0\.400/);
  });

  it('the static export opens from file:// and shows the same tiles', async () => {
    const out = join(dir, 'export');
    await exportViewer([{ slide: made.slide, heatmap: made.heatmap, heatmapDir: made.heatmapDir }], out, { format: 'png' });
    const p = await browser.newPage();
    p.setDefaultTimeout(0);
    await p.setViewport({ width: 1300, height: 800, deviceScaleFactor: 1 });
    await p.goto(`${pathToFileURL(join(out, 'index.html')).href}?smooth=0#overlay=none`, { waitUntil: 'load' });
    await p.evaluate(() => (window as any).gradelabViewer.ready);
    await settle(p);
    await zoomTo(p, 1, 500, 350);
    const side = 120;
    const ref = await made.slide.readRegion(0, 500 - (side + 4) / 2, 350 - (side + 4) / 2, side + 4, side + 4);
    expect(exactShare((await centre(p, side)).data, side, ref.data, side + 4)).toBeGreaterThan(0.8);
    await p.close();
  });

  it("a report's link (#slide=ID) opens that slide, not the first by priority", async () => {
    const otherPath = join(dir, 'other-slide.tiff');
    const pixels = Uint8Array.from({ length: 300 * 200 * 3 }, (_, i) => (i * 37) % 251);
    await writeSharpPyramid(otherPath, { width: 300, height: 200, data: pixels }, { mpp: 0.5, compression: 'deflate' });
    const other = await openSlide(otherPath);
    const out = join(dir, 'export-two');
    await exportViewer([{ slide: made.slide, heatmap: made.heatmap, heatmapDir: made.heatmapDir }, { slide: other }], out, {
      format: 'png',
    });
    await other.close();
    const shown = async (hash: string) => {
      const p = await browser.newPage();
      p.setDefaultTimeout(0);
      await p.goto(`${pathToFileURL(join(out, 'index.html')).href}${hash}`, { waitUntil: 'load' });
      await p.evaluate(() => (window as any).gradelabViewer.ready);
      const r = {
        title: await p.$eval('#title', (e) => e.textContent),
        chosen: await p.$eval('#list div.on', (e) => e.textContent),
        overlay: await p.$eval('#overlay', (e) => (e as HTMLSelectElement).value),
      };
      await p.close();
      return r;
    };
    // A slide with a heatmap opens with its grade overlay on (what a reviewer following a report's link needs).
    expect(await shown('')).toMatchObject({ title: 'view-slide', overlay: 'grade' });
    expect(await shown('#slide=view-slide&overlay=ood')).toMatchObject({ title: 'view-slide', overlay: 'ood' });
    const linked = await shown('#slide=other-slide');
    expect(linked.title).toBe('other-slide');
    expect(linked.chosen).toContain('other-slide');
    expect(linked.overlay).toBe('none');
  });

  it('shows a scale bar and the equivalent magnification from the slide mpp', async () => {
    await zoomTo(page, 1, 500, 350);
    await page.evaluate(() => (window as any).gradelabViewer.updateScale());
    // 0.5 um per image pixel at 1:1: 0.5 um per screen pixel, about 20x; the bar is the nicest length
    // under 120 px (50 um = 100 px).
    expect(await page.$eval('#magnification', (e) => e.textContent)).toMatch(/^\u2248 20x \(0\.50 \u00b5m\/px\)$/);
    expect(await page.$eval('#scalelabel', (e) => e.textContent)).toBe('50 \u00b5m');
    expect(await page.$eval('#scaleline', (e) => (e as HTMLElement).style.width)).toBe('100px');
    await zoomTo(page, 0.25, 500, 350);
    await page.evaluate(() => (window as any).gradelabViewer.updateScale());
    expect(await page.$eval('#magnification', (e) => e.textContent)).toMatch(/^\u2248 5\.0x/);
    expect(await page.$eval('#scalelabel', (e) => e.textContent)).toBe('200 \u00b5m');
  });

  it('slide ids that look like markup stay text: no script runs, served or exported, and the CSP holds', async () => {
    const hostile = '<img src=x onerror="window.__pwned=1">';
    const path = join(dir, `${hostile}.tiff`);
    await writeSharpPyramid(path, { width: 300, height: 200, data: new Uint8Array(300 * 200 * 3).fill(200) }, { mpp: 0.5 });
    const slide = await openSlide(path);
    const withMap = await slideWithHeatmap(join(dir, 'hostile'), '</script><script>window.__pwned=2</script>"\'&');
    const slides = [{ slide }, { slide: withMap.slide, heatmap: withMap.heatmap, heatmapDir: withMap.heatmapDir }];
    const served = await startViewer(slides, { port: 0, format: 'png' });
    const out = join(dir, 'export-hostile');
    await exportViewer(slides, out, { format: 'png' });
    try {
      for (const url of [served.url, pathToFileURL(join(out, 'index.html')).href]) {
        const p = await browser.newPage();
        p.setDefaultTimeout(0);
        const violations: string[] = [];
        p.on('console', (m) => {
          if (/Content Security Policy/.test(m.text())) violations.push(m.text());
        });
        await p.goto(`${url}#slide=${encodeURIComponent(hostile)}`, { waitUntil: 'load' });
        await p.evaluate(() => (window as any).gradelabViewer.ready);
        await p.evaluate(() => (window as any).gradelabViewer.openSlide(1));
        expect(await p.evaluate(() => (window as any).__pwned), url).toBeUndefined();
        const list = await p.$eval('#list', (e) => ({ text: e.textContent, imgs: e.querySelectorAll('img,script').length }));
        expect(list.imgs).toBe(0);
        expect(list.text).toContain(hostile);
        expect(list.text).toContain('</script><script>window.__pwned=2</script>');
        expect(await p.$eval('#title', (e) => e.textContent)).toBe(withMap.slide.id);
        // The page's own scripts load under its CSP: nothing was blocked.
        expect(violations).toEqual([]);
        await p.close();
      }
    } finally {
      await served.close();
      await slide.close();
      await withMap.slide.close();
    }
  });
});
