import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// Only the package's public entry, as a notebook or another program would use it.
import {
  audit,
  evaluate,
  evaluatePredictions,
  fitOod,
  generateSynthetic,
  openSlide,
  predict,
  readManifest,
  readPredictions,
  report,
  runSuite,
  tileSlides,
  train,
} from 'gradelab';
import { tempDir } from '../helpers.ts';

const dir = tempDir();

describe("the public API ('gradelab')", () => {
  it('runs the workflow as functions: synth, tile, train, evaluate, OOD, a suite, an audit, the report', async () => {
    const { manifest } = await generateSynthetic({
      task: 'prostate',
      slides: 10,
      out: join(dir, 'slides'),
      size: 768,
      sites: 2,
      anomalies: 0.2,
      seed: 3,
    });
    const slide = await openSlide(readManifest(manifest).records[0].path);
    expect(slide.levels[0].width).toBe(768);
    await slide.close();
    const ds = await tileSlides(manifest, join(dir, 'tiles'), { tileSize: 64, mpp: 1, stride: 32 });
    expect(ds.tiles.length).toBeGreaterThan(50);
    writeFileSync(
      join(dir, 'exp.yaml'),
      [
        'name: api-tiny',
        'task: prostate',
        `data: {dataset: ${join(dir, 'tiles')}, folds: 3}`,
        'model: {backbone: resnet, width: 0.25, inputSize: 32}',
        'train: {epochs: 1, batchSize: 16, tilesPerEpoch: 64, valTilesPerSlide: 4, workers: 0}',
        'backend: wasm',
      ].join('\n'),
    );
    const tracking = join(dir, 'mlruns');
    const trained = await train(join(dir, 'exp.yaml'), { out: join(dir, 'model'), trackingDir: tracking });
    expect(existsSync(join(trained.out, 'model.onnx'))).toBe(true);
    expect(trained.meta.tiling?.stride).toBe(32);
    await fitOod(trained.out, join(dir, 'tiles'), { methods: ['energy', 'qc-all'] });
    const metrics = await evaluate(trained.out, join(dir, 'tiles'), join(dir, 'eval'), { split: 'all', resamples: 50 });
    // evaluate is predict plus the metrics: the same rows scored by the same function.
    const { rows, k } = await predict(trained.out, join(dir, 'tiles'), { split: 'all' });
    const again = evaluatePredictions({ path: 'rows', k, rows }, { resamples: 50, seed: 1 });
    expect(again.metrics.qwk).toEqual(metrics.metrics.qwk);
    expect(readPredictions(join(dir, 'eval', 'predictions.csv')).rows.map((r) => r.pred)).toEqual(rows.map((r) => r.pred));
    writeFileSync(
      join(dir, 'suite.yaml'),
      'name: api\ntilesPerSlide: 2\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [2]}\ncriteria:\n  - accuracy >= 0\n',
    );
    const suite = await runSuite(trained.out, join(dir, 'tiles'), join(dir, 'suite.yaml'), join(dir, 'rob'), {
      split: 'all',
      resamples: 20,
      trackingDir: tracking,
    });
    expect(suite?.units.map((u) => u.condition)).toEqual(['jpeg']);
    const site = await audit(trained.out, join(dir, 'tiles'), join(dir, 'audit'), { resamples: 20 });
    // The audit grades the site's slides that are not anomalous, as predict grades them.
    expect(site.slides.map((s) => s.slideId).sort()).toEqual([...new Set(ds.tiles.filter((t) => !t.anomaly).map((t) => t.slideId))].sort());
    const byId = new Map(rows.map((r) => [r.slideId, r.pred]));
    for (const s of site.slides) expect(s.pred).toBe(byId.get(s.slideId));
    const r = await report({
      run: trained.out,
      out: join(dir, 'report'),
      eval: join(dir, 'eval'),
      audit: join(dir, 'audit'),
      robustness: [join(dir, 'rob')],
    });
    expect(r.sections.map((s) => s.id)).toContain('performance');
    expect(JSON.parse(readFileSync(join(dir, 'report', 'report.json'), 'utf8')).title).toMatch(/api-tiny/);
  });
});
