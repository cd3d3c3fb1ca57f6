// Regenerates the README's figures: node bin/run-ts.mjs docs/make-figures.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { contactSheet } from '../src/augment/index.ts';
import { designSlides, openSlide, renderSlide, SITES, type SynthSlide } from '../src/data/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradelab-fig-'));

/** The 256-px tile whose mask holds most pixels of `label`: shows what the grade looks like. */
async function bestTile(s: SynthSlide, label: number) {
  const mask = await sharp(join(dir, s.maskPath)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  let best = [0, 0];
  let bestCount = -1;
  for (let y = 0; y + 256 <= mask.info.height; y += 64) {
    for (let x = 0; x + 256 <= mask.info.width; x += 64) {
      let n = 0;
      for (let j = 0; j < 256; j += 4) for (let i = 0; i < 256; i += 4) if (mask.data[(y + j) * mask.info.width + x + i] === label) n++;
      if (n > bestCount) [bestCount, best] = [n, [x, y]];
    }
  }
  const slide = await openSlide(join(dir, s.path));
  const img = await slide.readRegion(0, best[0], best[1], 256, 256);
  await slide.close();
  return img;
}
const cells = [];
const [base] = designSlides({ task: 'prostate', slides: 1, out: dir, size: 1536, sites: 1, anomalies: 0, seed: 7 });
for (const [label, primary, secondary, grade] of [['benign (ISUP 0)', 0, 0, 0], ['3+3 (ISUP 1)', 3, 3, 1], ['4+4 (ISUP 4)', 4, 4, 4], ['5+5 (ISUP 5)', 5, 5, 5]] as const) {
  const s = { ...base, id: `fig-${grade}`, primary, secondary, grade, seed: `fig/${grade}`, path: `fig-${grade}.tiff`, maskPath: `fig-${grade}-mask.tiff` } as SynthSlide;
  await renderSlide(s, dir);
  cells.push({ image: await bestTile(s, grade === 0 ? 2 : primary), label });
}
const [b] = designSlides({ task: 'breast', slides: 1, out: dir, size: 1024, sites: 1, anomalies: 0, seed: 7 });
for (const score of [1, 3]) {
  const s = { ...b, id: `fig-b${score}`, tubules: score, pleomorphism: score, mitoses: score, grade: score, seed: `figb/${score}`, path: `fig-b${score}.tiff`, maskPath: `fig-b${score}-mask.tiff` } as SynthSlide;
  await renderSlide(s, dir);
  cells.push({ image: await bestTile(s, 2), label: `breast, Nottingham ${score}` });
}
await sharp(await contactSheet(cells, 6, { title: 'Synthetic tiles at 0.5 um/px, site-A' })).toFile('docs/synthetic-tiles.png');

const siteCells = [];
for (const site of SITES) {
  const s = { ...base, id: `fig-${site.name}`, primary: 4, secondary: 3, grade: 3, seed: 'fig/site', site: site.name, scanner: site.scanner, path: `fig-${site.name}.tiff`, maskPath: `fig-${site.name}-mask.tiff` } as SynthSlide;
  await renderSlide(s, dir);
  siteCells.push({ image: await bestTile(s, 4), label: `${site.name} (${site.scanner})` });
}
await sharp(await contactSheet(siteCells, 6, { title: 'One 4+3 tile as six sites stain and scan it' })).toFile('docs/synthetic-sites.png');
console.log('wrote docs/synthetic-tiles.png and docs/synthetic-sites.png');

// The evaluation chart: a simulated grading study (test/fixtures/simulatePredictions.ts).
const { evaluatePredictions, renderChart, subgroupSpec } = await import('../src/eval/index.ts');
const { simulatePredictions } = await import('../test/fixtures/simulatePredictions.ts');
const report = evaluatePredictions({ path: 'simulated', k: 6, rows: simulatePredictions(300, 3) }, { resamples: 1000, seed: 1 });
await sharp((await renderChart(subgroupSpec(report, 'site'))).png).toFile('docs/per-site-example.png');
console.log('wrote docs/per-site-example.png');
