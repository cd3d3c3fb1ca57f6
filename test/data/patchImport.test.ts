import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildTileDataset,
  importPatches,
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

/** Writes patch files with Python's h5py, as CLAM or TRIDENT write them (coords N x 2 int64 with attributes). */
function writePatchFiles(folder: string, files: { name: string; coords: number[][]; attrs: Record<string, number | string> }[]): void {
  mkdirSync(folder, { recursive: true });
  const spec = join(folder, 'spec.json');
  writeFileSync(spec, JSON.stringify(files));
  execFileSync(PYTHON, [
    '-c',
    `import h5py, json, sys, numpy as np
for f in json.load(open(sys.argv[1])):
    with h5py.File(sys.argv[2] + '/' + f['name'], 'w') as h:
        d = h.create_dataset('coords', data=np.array(f['coords'], dtype=np.int64).reshape(-1, 2))
        for k, v in f['attrs'].items(): d.attrs[k] = v`,
    spec,
    folder,
  ]);
}

/** Each slide's tile origins in the coordinates-only tiling, the patches a toolkit would have kept. */
const coordsOf = (slideId: string) => tiled.tiles.filter((t) => t.slideId === slideId).map((t) => [t.x, t.y]);

beforeAll(async () => {
  const made = await generateSynthetic({ task: 'prostate', slides: 3, out: join(dir, 'slides'), size: 1024, sites: 1, seed: 9 });
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
