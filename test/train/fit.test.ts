import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTileDataset, openTileDataset, readManifest } from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { FileStore } from '../../src/track/index.ts';
import { predictTiles } from '../../src/data/index.ts';
import { fit, loadLayersModel, TfjsPredictor, parseTrainConfig, scheduledLr } from '../../src/train/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const dataset = join(dir, 'tiles');

function config(extra: Record<string, unknown> = {}) {
  return {
    name: 'tiny',
    task: 'prostate',
    data: { dataset, folds: 3 },
    model: { backbone: 'resnet', width: 0.25, inputSize: 32 },
    augment: [
      { name: 'hflip', p: 0.5 },
      { name: 'hed-jitter', preset: 'light' },
    ],
    train: {
      epochs: 2,
      batchSize: 16,
      lr: 0.003,
      warmupEpochs: 0.5,
      tilesPerEpoch: 96,
      valTilesPerSlide: 4,
      workers: 0,
      labelSmoothing: 0.05,
      gradClip: 5,
    },
    backend: 'wasm',
    seed: 3,
    ...extra,
  };
}

beforeAll(async () => {
  const { manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 12,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0,
    seed: 9,
  });
  await buildTileDataset(readManifest(manifest), { out: dataset, tileSize: 64, mpp: 1.0, stride: 32, minTissue: 0.5 });
}, 600_000);

describe('schedule', () => {
  it('warms up linearly then decays by cosine to zero', () => {
    expect(scheduledLr(1, 0, 10, 100)).toBeCloseTo(0.1);
    expect(scheduledLr(1, 9, 10, 100)).toBeCloseTo(1);
    expect(scheduledLr(1, 55, 10, 100)).toBeCloseTo(0.5, 5);
    expect(scheduledLr(1, 100, 10, 100)).toBeCloseTo(0, 6);
  });
});

describe('training', () => {
  it('trains end to end, saves a model directory that loads, predicts and fine-tunes', async () => {
    const out = join(dir, 'model-a');
    const r = await fit(parseTrainConfig(config(), 'test'), { out });
    expect(r.history).toHaveLength(2);
    expect(r.history[1].trainLoss).toBeLessThan(r.history[0].trainLoss * 1.2);
    for (const f of ['model.json', 'weights.bin', 'gradelab.json', 'history.json', 'checkpoint/state.json', 'checkpoint/optimizer.bin'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const meta = JSON.parse(readFileSync(join(out, 'gradelab.json'), 'utf8'));
    expect(meta).toMatchObject({
      task: 'prostate',
      head: 'softmax',
      classes: [0, 1, 2, 3, 4, 5],
      backbone: 'resnet',
      inputSize: 32,
      backend: 'wasm',
      seed: 3,
    });
    expect(meta.augment).toHaveLength(2);

    const ds = await openTileDataset(dataset);
    const model = await TfjsPredictor.load(out);
    const p = await predictTiles(model, ds, ds.tiles.slice(0, 20), { keepFeatures: true });
    for (let i = 0; i < 20; i++) expect(Array.from(p.probs.subarray(i * 6, i * 6 + 6)).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(p.featureDim).toBe(32);

    // Fine-tune: the backbone from model-a, a new ordinal head, frozen for the first epoch.
    const ft = await fit(
      parseTrainConfig(
        config({ name: 'ft', model: { backbone: 'resnet', width: 0.25, inputSize: 32, head: 'ordinal', init: out, freezeEpochs: 1 } }),
        'test',
      ),
      { out: join(dir, 'model-ft') },
    );
    expect(ft.history).toHaveLength(2);
    const ftModel = await TfjsPredictor.load(join(dir, 'model-ft'));
    expect(ftModel.meta.head).toBe('ordinal');
    // The last epoch's weights (the best epoch may be the frozen one).
    const last = await loadLayersModel(join(dir, 'model-ft', 'checkpoint'));
    const a = model.model.getLayer('stem_conv').getWeights()[0].dataSync();
    const b = last.getLayer('stem_conv').getWeights()[0].dataSync();
    // Frozen for one epoch, then trained at a tenth of the rate: close to, but not the same as, the start.
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(0.5);
  });

  it('mil fit trains an attention head on model-a and predict --pooling attention uses it', async () => {
    const out = join(dir, 'model-a');
    const fitted = spawnSync(
      process.execPath,
      [bin, 'mil', 'fit', '--model', out, '--data', dataset, '--epochs', '3', '--backend', 'wasm'],
      { encoding: 'utf8', timeout: 600_000 },
    );
    expect(fitted.status, fitted.stderr).toBe(0);
    expect(fitted.stdout).toMatch(/validation QWK on \d+ slides: attention -?\d\.\d{3}, mean pooling -?\d\.\d{3}/);
    const csv = join(dir, 'attention.csv');
    const pred = spawnSync(
      process.execPath,
      [bin, 'predict', '--model', out, '--data', dataset, '--split', 'all', '--pooling', 'attention', '--out', csv, '--backend', 'wasm'],
      { encoding: 'utf8', timeout: 600_000 },
    );
    expect(pred.status, pred.stderr).toBe(0);
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    const slides = new Set((await openTileDataset(dataset)).tiles.map((t) => t.slideId));
    expect(rows).toHaveLength(slides.size + 1);
    const noHead = spawnSync(
      process.execPath,
      [
        bin,
        'predict',
        '--model',
        join(dir, 'model-ft'),
        '--data',
        dataset,
        '--pooling',
        'attention',
        '--out',
        join(dir, 'x.csv'),
        '--backend',
        'wasm',
      ],
      { encoding: 'utf8', timeout: 600_000 },
    );
    expect(noHead.status).not.toBe(0);
    expect(noHead.stderr).toMatch(/no attention-MIL head/);
    expect(noHead.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(existsSync(join(dir, 'x.csv'))).toBe(false);
  });

  it('the same config, seed and replica count give the same weights', async () => {
    const c = parseTrainConfig(config({ train: { ...config().train, epochs: 1, replicas: 2 } }), 'test');
    await fit(c, { out: join(dir, 'det-1') });
    await fit(c, { out: join(dir, 'det-2') });
    expect(readFileSync(join(dir, 'det-1', 'weights.bin')).equals(readFileSync(join(dir, 'det-2', 'weights.bin')))).toBe(true);
  });

  it('a run killed with SIGKILL resumes to the same weights and metrics as an uninterrupted one', async () => {
    const cfg = join(dir, 'resume.yaml');
    // On replicas: the resumed workers start from the checkpoint and reproduce the uninterrupted run.
    const body = config({ name: 'resume', train: { ...config().train, epochs: 3, tilesPerEpoch: 128, replicas: 2 } });
    writeFileSync(cfg, JSON.stringify(body));
    const store = join(dir, 'mlruns');
    const straight = spawnSync(process.execPath, [bin, 'train', '--config', cfg, '--out', join(dir, 'straight'), '--tracking-dir', store], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(straight.status, straight.stderr).toBe(0);

    const out = join(dir, 'killed');
    const child = spawn(process.execPath, [bin, 'train', '--config', cfg, '--out', out, '--tracking-dir', store], { stdio: 'ignore' });
    const exited = new Promise((res) => child.on('exit', res));
    await new Promise<void>((res) => {
      const poll = setInterval(() => {
        try {
          if (JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')).epoch >= 1) {
            clearInterval(poll);
            res();
          }
        } catch {
          // not written yet
        }
      }, 20);
    });
    child.kill('SIGKILL');
    await exited;
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).toBeLessThan(3);
    const resumed = spawnSync(process.execPath, [bin, 'train', '--resume', out, '--tracking-dir', store], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(readFileSync(join(out, 'weights.bin')).equals(readFileSync(join(dir, 'straight', 'weights.bin')))).toBe(true);
    const h1 = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    const h2 = JSON.parse(readFileSync(join(dir, 'straight', 'history.json'), 'utf8'));
    expect(h1.map((e: any) => [e.trainLoss, e.valQwk])).toEqual(h2.map((e: any) => [e.trainLoss, e.valQwk]));
    const run = new FileStore(store).getRun(state.runId);
    expect(run.status).toBe('FINISHED');
    expect(run.tags['gradelab.resumed']).toBe('true');
  });

  it('a typo in the experiment file is an error with its path', () => {
    expect(() => parseTrainConfig({ ...config(), train: { epoch: 3 } }, 'x.yaml')).toThrow(/x\.yaml: train: unknown key "epoch"/);
    expect(() => parseTrainConfig({ ...config(), model: { head: 'sigmoid' } }, 'x.yaml')).toThrow(/x\.yaml: model\.head/);
  });
});
