// Tissue detection against the generator's truth: for every slide of a demo's three manifests, the IoU
// of detectTissue's mask with the label mask's tissue (label > 0), and the slides left with no tissue.
//   node bin/run-ts.mjs bench/tissueTruth.ts gradelab-demo [saturation|od]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { detectTissue, openSlide, type TissueMethod, tissueIoU } from '../src/data/index.ts';

const [demo = 'gradelab-demo', method = 'saturation'] = process.argv.slice(2) as [string?, TissueMethod?];
const ious: number[] = [];
const empty: string[] = [];
for (const part of ['slides', 'held-out-slides', 'site-D-slides']) {
  const manifest = join(demo, part, 'manifest.csv');
  const [head, ...rows] = readFileSync(manifest, 'utf8').trim().split('\n');
  const col = (name: string) => head.split(',').indexOf(name);
  for (const row of rows) {
    const f = row.split(',');
    const slide = await openSlide(join(dirname(manifest), f[col('path')]));
    const truth = await openSlide(join(dirname(manifest), f[col('mask_path')]));
    const { width, height } = slide.levels[0];
    const labels = await truth.readRegion(0, 0, 0, width, height);
    const mask = await detectTissue(slide, { method });
    const { iou, found } = tissueIoU(mask, labels);
    ious.push(iou);
    if (!found) empty.push(`${part}/${f[0]} (${f[col('scanner')]}, ISUP ${f[col('isup_grade')]})`);
    await slide.close();
    await truth.close();
  }
}
ious.sort((a, b) => a - b);
const mean = ious.reduce((a, b) => a + b, 0) / ious.length;
console.log(
  `${method}: ${ious.length} slides, IoU mean ${mean.toFixed(4)}, median ${ious[ious.length >> 1].toFixed(4)}, 5th percentile ${ious[Math.floor(ious.length * 0.05)].toFixed(4)}; no tissue on ${empty.length}${empty.length ? `: ${empty.slice(0, 10).join(', ')}${empty.length > 10 ? ', ...' : ''}` : ''}`,
);
