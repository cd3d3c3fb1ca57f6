import { rmSync, writeFileSync } from 'node:fs';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadSuite, runUnit, suiteUnits, type SuiteScorer } from '../src/eval/index.ts';
import { buildTileDataset, generateSynthetic, openTileDataset, readManifest, spreadTilesPerSlide } from '../src/data/index.ts';
import { backbone, buildHead, ModelPredictor, selectBackend } from '../src/train/index.ts';
import { cached, exists, fmt, header } from './common.ts';

/**
 * A robustness suite's throughput: conditions per minute and tiles/s, with perturbation and inference
 * time apart, on the stain-shift suite with an untrained compact ResNet (throughput does not depend on
 * the weights).
 */
export async function benchRobustness(): Promise<void> {
  header('Robustness suite throughput: stain-shift suite, compact ResNet (width 0.5, 64 px), 128 px tiles');
  await selectBackend('wasm');
  const dir = cached('robustness-ds');
  if (!exists(`${dir}/tiles.csv`)) {
    rmSync(dir, { recursive: true, force: true });
    const { manifest } = await generateSynthetic({ task: 'prostate', slides: 12, out: cached('robustness-slides'), size: 1024, anomalies: 0, seed: 3 });
    await buildTileDataset(readManifest(manifest), { out: dir, tileSize: 128, mpp: 1.0, stride: 64 });
  }
  const ds = await openTileDataset(dir);
  const input = tfl.input({ shape: [64, 64, 3] });
  const model = tfl.model({ inputs: input, outputs: buildHead(backbone('resnet').build(input, { inputSize: 64, width: 0.5, seed: 1 }), 'softmax', 6, 1) });
  const predictor = new ModelPredictor(model, { head: 'softmax', classes: [0, 1, 2, 3, 4, 5], inputSize: 64 }, { fold: true });
  const scorer: SuiteScorer = { classes: [0, 1, 2, 3, 4, 5], score: async (b) => ({ probs: await predictor.predict(b) }) };
  const { suite } = loadSuite(new URL('../experiments/suites/stain-shift.yaml', import.meta.url).pathname);
  const tiles = spreadTilesPerSlide(ds.tiles, suite.tilesPerSlide);
  const units = suiteUnits(suite);
  const t0 = performance.now();
  let read = 0;
  let perturb = 0;
  let normalise = 0;
  let infer = 0;
  for (const u of units) {
    const r = await runUnit(ds, tiles, scorer, u, { resamples: 100, seed: 1 });
    read += r.readSeconds ?? 0;
    perturb += r.perturbSeconds;
    if (u.condition === 'macenko-normalised') normalise += r.perturbSeconds;
    infer += r.inferSeconds;
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`${units.length} conditions x ${tiles.length} tiles in ${fmt(secs)} s: ${fmt((units.length / secs) * 60)} conditions/min, ${fmt((units.length * tiles.length) / secs)} tiles/s; reading ${fmt(read)} s, perturbation ${fmt(perturb)} s (of which per-tile Macenko normalisation ${fmt(normalise)} s), inference ${fmt(infer)} s (perturbation/inference ${fmt(perturb / infer, 2)})\n`);
  writeFileSync(cached('robustness-last.json'), JSON.stringify({ secs, read, perturb, infer }));
}
