import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildTileDataset,
  importPatches,
  importedFeatureSets,
  openSlide,
  readDatasetTile,
  readManifest,
  TileReader,
  type Manifest,
  type TileDataset,
} from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { missingTool, runCli, tempDir } from '../helpers.ts';

const PYTHON = '/usr/bin/python3';
const hasH5py = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import h5py'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const dir = tempDir();
let manifest: Manifest;
let tiled: TileDataset;
let slideMpp: number;
let level1: number;

interface H5Spec {
  name: string;
  coords: number[][];
  attrs: Record<string, number | string>;
  /** Feature files: N x D float32 vectors beside the coords. */
  features?: number[][];
}

/**
 * Writes patch or feature files with Python's h5py, as CLAM and TRIDENT write them: coords N x 2 int64
 * with attributes, and features N x D float32.
 */
function writePatchFiles(folder: string, files: H5Spec[]): void {
  mkdirSync(folder, { recursive: true });
  const spec = join(folder, 'spec.json');
  writeFileSync(spec, JSON.stringify(files));
  execFileSync(PYTHON, [
    '-c',
    `import h5py, json, sys, numpy as np
for f in json.load(open(sys.argv[1])):
    with h5py.File(sys.argv[2] + '/' + f['name'], 'w') as h:
        d = h.create_dataset('coords', data=np.array(f['coords'], dtype=np.int64).reshape(-1, 2))
        for k, v in f['attrs'].items(): d.attrs[k] = v
        if 'features' in f: h.create_dataset('features', data=np.array(f['features'], dtype=np.float32))`,
    spec,
    folder,
  ]);
}

/** Each slide's tile origins in the coordinates-only tiling, the patches a toolkit would have kept. */
const coordsOf = (slideId: string) => tiled.tiles.filter((t) => t.slideId === slideId).map((t) => [t.x, t.y]);

beforeAll(async () => {
  const made = await generateSynthetic({ task: 'prostate', slides: 12, out: join(dir, 'slides'), size: 1024, sites: 1, seed: 9 });
  manifest = readManifest(made.manifest);
  const slide = await openSlide(manifest.records[0].path);
  slideMpp = slide.mpp!;
  level1 = slide.levels.findIndex((l) => Math.abs(l.downsample - 4) < 1e-6);
  await slide.close();
  // 64 px tiles at four times the slide's mpp: a 256 px level-0 footprint, read at the downsample-4 level.
  tiled = await buildTileDataset(manifest, {
    out: join(dir, 'tiled'),
    tileSize: 64,
    mpp: slideMpp * 4,
    encoding: 'coords',
    minTissue: 0.5,
  });
}, 120_000);

describe.skipIf(missingTool(hasH5py))('dataset import from CLAM and TRIDENT patch files', () => {
  const trident = (slideId: string, over: Record<string, number> = {}) => ({
    name: `${slideId}_patches.h5`,
    coords: coordsOf(slideId),
    attrs: {
      patch_size: 64,
      patch_size_level0: 256,
      level0_magnification: 10 / slideMpp,
      target_magnification: 2.5 / slideMpp,
      overlap: 0,
      name: slideId,
      ...over,
    },
  });
  const clam = (slideId: string) => ({
    name: `${slideId}.h5`,
    coords: coordsOf(slideId),
    attrs: { patch_size: 64, patch_level: level1, name: slideId },
  });

  it('takes both layouts to the tiles gradelab itself cuts at that footprint, pixels and all', async () => {
    expect(level1).toBeGreaterThan(0);
    for (const [tool, make] of [
      ['trident', trident],
      ['clam', clam],
    ] as const) {
      const patches = join(dir, `${tool}-patches`, 'patches');
      writePatchFiles(
        patches,
        manifest.records.map((r) => make(r.slideId)),
      );
      const ds = await importPatches(manifest, { from: tool, patches: join(dir, `${tool}-patches`), out: join(dir, `${tool}-ds`) });
      expect(ds.meta.encoding).toBe('coords');
      expect([ds.meta.tileSize, ds.meta.mpp]).toEqual([64, Number((slideMpp * 4).toFixed(4))]);
      const key = (d: TileDataset) => d.tiles.map((t) => [t.slideId, t.x, t.y, t.level, t.readSize]);
      expect(key(ds), tool).toEqual(key(tiled));
      const a = new TileReader();
      const b = new TileReader();
      for (const i of [0, Math.floor(ds.tiles.length / 2), ds.tiles.length - 1]) {
        const [x, y] = await Promise.all([readDatasetTile(ds, ds.tiles[i], a), readDatasetTile(tiled, tiled.tiles[i], b)]);
        expect(Buffer.compare(Buffer.from(x.data), Buffer.from(y.data)), `${tool} tile ${i}`).toBe(0);
      }
      await a.close();
      await b.close();
    }
  });

  it('refuses bad patch files with one line naming the file, exit 2, and no dataset', async () => {
    const cases: [string, (folder: string) => void, RegExp][] = [
      [
        'outside',
        (f) =>
          writePatchFiles(
            f,
            manifest.records.map((r, i) => (i === 1 ? { ...trident(r.slideId), coords: [[5000, 10]] } : trident(r.slideId))),
          ),
        /_patches\.h5: patch 0 at \(5000, 10\), 256 px at level 0, is outside the slide/,
      ],
      [
        'magnification',
        (f) =>
          writePatchFiles(
            f,
            manifest.records.map((r) => trident(r.slideId, { level0_magnification: 40 })),
          ),
        /patched at level-0 magnification 40x .* but the slide is at/,
      ],
      [
        'sizes',
        (f) =>
          writePatchFiles(
            f,
            manifest.records.map((r, i) => trident(r.slideId, i === 2 ? { patch_size: 32, patch_size_level0: 128 } : {})),
          ),
        /32 px patches .* one dataset has one tile size/,
      ],
      [
        'no-attribute',
        (f) =>
          writePatchFiles(
            f,
            manifest.records.map((r) => ({ ...trident(r.slideId), attrs: { patch_size: 64 } })),
          ),
        /lacks a positive "patch_size_level0" attribute/,
      ],
      [
        'missing',
        (f) =>
          writePatchFiles(
            f,
            manifest.records.slice(1).map((r) => trident(r.slideId)),
          ),
        /_patches\.h5: TRIDENT patch file not found/,
      ],
      [
        'not-hdf5',
        (f) => {
          writePatchFiles(
            f,
            manifest.records.map((r) => trident(r.slideId)),
          );
          writeFileSync(join(f, `${manifest.records[0].slideId}_patches.h5`), 'not hdf5');
        },
        /not a readable HDF5 file/,
      ],
    ];
    for (const [name, make, message] of cases) {
      const folder = join(dir, `bad-${name}`);
      make(folder);
      const r = await runCli([
        'dataset',
        'import',
        '--from',
        'trident',
        '--patches',
        folder,
        '--manifest',
        manifest.path,
        '--out',
        join(dir, `out-${name}`),
      ]);
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(message);
      expect(existsSync(join(dir, `out-${name}`)), name).toBe(false);
    }
  });
});

describe.skipIf(missingTool(hasH5py))('dataset import --features: CLAM and TRIDENT features into the embedding cache', () => {
  const D = 12;
  /** A patch's feature vector, a function of where it is (float32 as h5py stores it). */
  const vector = (s: number, x: number, y: number) =>
    Array.from({ length: D }, (_, j) => Math.fround(Math.sin(0.001 * x + 0.002 * y + s + 0.7 * j)));
  /** Each slide's features in the reverse of the patch order: they are matched by coordinates. */
  const featureFiles = (over: (s: number, spec: H5Spec) => H5Spec = (_, f) => f) =>
    manifest.records.map((r, s) => {
      const coords = coordsOf(r.slideId).reverse();
      return over(s, { name: `${r.slideId}.h5`, coords, attrs: {}, features: coords.map(([x, y]) => vector(s, x, y)) });
    });
  const patchesFor = (tool: 'clam' | 'trident', folder: string) =>
    writePatchFiles(
      folder,
      manifest.records.map((r): H5Spec =>
        tool === 'trident'
          ? {
              name: `${r.slideId}_patches.h5`,
              coords: coordsOf(r.slideId),
              attrs: { patch_size: 64, patch_size_level0: 256, level0_magnification: 10 / slideMpp, overlap: 0 },
            }
          : { name: `${r.slideId}.h5`, coords: coordsOf(r.slideId), attrs: { patch_size: 64, patch_level: level1 } },
      ),
    );

  const importTrident = (patches: string, out: string, ...more: string[]) =>
    runCli(['dataset', 'import', '--from', 'trident', '--patches', patches, '--manifest', manifest.path, '--out', out, ...more]);

  it('reads both layouts back value for value, matched to the tiles by coordinates', async () => {
    for (const tool of ['trident', 'clam'] as const) {
      patchesFor(tool, join(dir, `f-${tool}`, 'patches'));
      const features = tool === 'trident' ? join(dir, `f-${tool}`, 'features_toy') : join(dir, `f-${tool}`, 'feats');
      writePatchFiles(tool === 'trident' ? features : join(features, 'h5_files'), featureFiles());
      const ds = await importPatches(manifest, {
        from: tool,
        patches: join(dir, `f-${tool}`),
        out: join(dir, `f-${tool}-ds`),
        features: { dir: features, ...(tool === 'clam' ? { name: 'toy-clam' } : {}) },
      });
      const sets = importedFeatureSets(ds);
      const name = tool === 'trident' ? 'toy' : 'toy-clam';
      expect([...sets.keys()], tool).toEqual([name]);
      const { cache, imported } = sets.get(name)!;
      expect(imported).toMatchObject({ tool, name, dim: D });
      const slideIndex = new Map(manifest.records.map((r, s) => [r.slideId, s]));
      const expected = ds.tiles.flatMap((t) => vector(slideIndex.get(t.slideId)!, t.x, t.y));
      expect(Array.from(cache.read(ds.tiles)), tool).toEqual(expected);
    }
  });

  it('a head trains on imported features and predicts, as its affine map of them says; pixel-only work is refused', async () => {
    const data = join(dir, 'f-trident-cli');
    patchesFor('trident', join(dir, 'f-cli', 'patches'));
    const features = join(dir, 'f-cli', 'features_toy');
    writePatchFiles(features, featureFiles());
    const imp = await importTrident(join(dir, 'f-cli'), data, '--features', features);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toMatch(/features "toy": 12 per tile; train a head on them with model\.backbone: \{features: toy\}/);
    const split = await runCli(['split', data, '--folds', '3']);
    expect(split.code, split.stderr).toBe(0);
    const config = join(dir, 'imported.yaml');
    writeFileSync(
      config,
      `name: imported\ntask: prostate\ndata: {dataset: ${data}, fold: 0}\nmodel: {backbone: {features: toy}, head: softmax}\naugment: []\ntrain: {epochs: 3, batchSize: 16, tilesPerEpoch: 64}\nbackend: wasm\n`,
    );
    const model = join(dir, 'imported-model');
    const t = await runCli(['train', '--config', config, '--out', model, '--tracking-dir', join(dir, 'mlruns')]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout + t.stderr).toMatch(/head on trident features "toy", 12 features/);
    expect(existsSync(join(model, 'model.onnx'))).toBe(false);

    const p = await runCli([
      'predict',
      '--model',
      model,
      '--data',
      data,
      '--split',
      'all',
      '--level',
      'tile',
      '--out',
      join(dir, 'imported.csv'),
    ]);
    expect(p.code, p.stderr).toBe(0);
    const head = JSON.parse(readFileSync(join(model, 'head.json'), 'utf8')) as {
      dim: number;
      outputs: number;
      weights: number[];
      bias: number[];
    };
    const rows = parse(readFileSync(join(dir, 'imported.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const slideIndex = new Map(manifest.records.map((r, s) => [r.slideId, s]));
    expect(rows.length).toBe(tiled.tiles.length);
    for (const r of rows) {
      // softmax(f W + b), computed here from head.json and the vectors written to the HDF5 files.
      const f = vector(slideIndex.get(r.slide_id)!, Number(r.x), Number(r.y));
      const logits = head.bias.map((b, o) => f.reduce((s, v, j) => s + v * head.weights[j * head.outputs + o], b));
      const m = Math.max(...logits);
      const z = logits.reduce((s, l) => s + Math.exp(l - m), 0);
      logits.forEach((l, o) => expect(Number(r[`prob_${o}`])).toBeCloseTo(Math.exp(l - m) / z, 5));
    }

    // The attention-MIL head and the feature-space OOD detectors fit on the imported features too.
    const mil = await runCli(['mil', 'fit', '--model', model, '--data', data, '--epochs', '2']);
    expect(mil.code, mil.stderr).toBe(0);
    expect(existsSync(join(model, 'mil.json'))).toBe(true);
    const ood = await runCli(['ood', 'fit', '--model', model, '--data', data, '--method', 'mahalanobis', 'knn']);
    expect(ood.code, ood.stderr).toBe(0);
    const withOod = await runCli(['predict', '--model', model, '--data', data, '--split', 'all', '--out', join(dir, 'imported-ood.csv')]);
    expect(withOod.code, withOod.stderr).toBe(0);
    expect(readFileSync(join(dir, 'imported-ood.csv'), 'utf8').split('\n')[0]).toMatch(/ood_score/);

    const suite = await runCli([
      'robustness',
      '--model',
      model,
      '--data',
      data,
      '--suite',
      'experiments/suites/stain-shift.yaml',
      '--out',
      join(dir, 'rob'),
    ]);
    expect(suite.code).toBe(2);
    expect(suite.stderr.trim().split('\n')).toHaveLength(1);
    expect(suite.stderr).toMatch(/a head on trident features "toy" cannot run on pixels, which a robustness suite needs/);
  });

  it('refuses feature files that do not fit the patches, with one line naming the file, and leaves no dataset', async () => {
    const cases: [string, (s: number, f: H5Spec) => H5Spec, RegExp][] = [
      [
        'count',
        (s, f) => (s === 1 ? { ...f, coords: f.coords.slice(1), features: f.features!.slice(1) } : f),
        /\.h5: \d+ feature vectors, but the slide's patch file has \d+ patches/,
      ],
      ['mismatch', (s, f) => (s === 0 ? { ...f, coords: f.coords.slice(1) } : f), /\.h5: \d+ feature vectors for \d+ coordinates/],
      ['coords', (s, f) => (s === 2 ? { ...f, coords: [[1, 1], ...f.coords.slice(1)] } : f), /\.h5: no feature vector for the patch at/],
      [
        'width',
        (s, f) => (s === 2 ? { ...f, features: f.features!.map((v) => v.slice(1)) } : f),
        /\.h5: 11 features per patch, but .* has 12/,
      ],
    ];
    for (const [name, over, message] of cases) {
      patchesFor('trident', join(dir, 'f-bad', 'patches'));
      const features = join(dir, `bad-features-${name}`);
      writePatchFiles(features, featureFiles(over));
      const out = join(dir, `bad-features-out-${name}`);
      const r = await importTrident(join(dir, 'f-bad'), out, '--features', features, '--encoder', 'x');
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(message);
      expect(existsSync(out), name).toBe(false);
    }
    const missing = await importTrident(join(dir, 'f-bad'), join(dir, 'nf'), '--features', join(dir, 'no-such'));
    expect([missing.code, missing.stderr.trim()]).toEqual([2, expect.stringMatching(/--features: .*no-such not found$/)]);
  });
});
