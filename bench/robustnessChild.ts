// One configuration of the robustness benchmark, in its own process: node bin/run-ts.mjs bench/robustnessChild.ts before|after DATASET MODEL
import { modelScorer } from '../src/workflows/index.ts';
import { openTileDataset, spreadTilesPerSlide } from '../src/data/index.ts';
import { loadSuite, runSuiteUnits, suiteUnits, type SuiteRole, type UnitResult } from '../src/eval/index.ts';

export interface Measure {
  units: number;
  tiles: number;
  secs: number;
  read: number;
  perturb: number;
  infer: number;
}

const [mode, dataset, model] = process.argv.slice(2);
if (mode === 'before' || mode === 'after') {
  const ds = await openTileDataset(dataset);
  const { suite } = loadSuite(new URL('../experiments/suites/stain-shift.yaml', import.meta.url).pathname);
  const tiles = spreadTilesPerSlide(ds.tiles, suite.tilesPerSlide);
  const units = [{ condition: 'clean', severity: 0 }, ...suiteUnits(suite)];
  // Before: TensorFlow.js, and each condition reads and decodes its own tiles (one call per unit).
  const scorer = await modelScorer(model, mode === 'before' ? { engine: 'tfjs', backend: 'wasm' } : { engine: 'onnx' });
  const results: UnitResult[] = [];
  const run = (pending: SuiteRole['pending']) =>
    runSuiteUnits(ds, tiles, [{ role: 'model', scorer, pending }], {
      resamples: 100,
      seed: 1,
      workers: mode === 'before' ? 0 : undefined,
      onUnit: (_, r) => void results.push(r),
    });
  const t0 = performance.now();
  if (mode === 'before') for (const u of units) await run([u]);
  else await run(units);
  const secs = (performance.now() - t0) / 1000;
  await scorer.dispose();
  const sum = (f: (r: UnitResult) => number) => results.reduce((s, r) => s + f(r), 0);
  const m: Measure = {
    units: units.length,
    tiles: tiles.length,
    secs,
    read: sum((r) => r.readSeconds ?? 0),
    perturb: sum((r) => r.perturbSeconds),
    infer: sum((r) => r.inferSeconds),
  };
  process.stdout.write(JSON.stringify(m));
}
