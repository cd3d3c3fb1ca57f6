import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildTileDataset,
  openTileDataset,
  readDatasetTile,
  readManifest,
  TileLoader,
  TileReader,
  type TileDataset,
} from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
let raw: TileDataset;
let coords: TileDataset;

beforeAll(async () => {
  const { manifest } = await generateSynthetic({ task: 'prostate', slides: 4, out: join(dir, 'slides'), size: 640, sites: 2, seed: 5 });
  const tiling = { tileSize: 64, mpp: 1, stride: 48 };
  raw = await buildTileDataset(readManifest(manifest), { ...tiling, out: join(dir, 'raw'), encoding: 'raw' });
  coords = await buildTileDataset(readManifest(manifest), { ...tiling, out: join(dir, 'coords'), encoding: 'coords' });
}, 120_000);

describe('coordinates-only store', () => {
  it('keeps no pixels: no shards, the same tiles as a stored tiling, each naming its slide', async () => {
    expect(existsSync(join(coords.dir, 'shards'))).toBe(false);
    expect(readdirSync(join(raw.dir, 'shards')).length).toBe(4);
    const where = (ds: TileDataset) => ds.tiles.map((t) => [t.index, t.slideId, t.x, t.y, t.level, t.tissue]);
    expect(where(coords)).toEqual(where(raw));
    expect(new Set(coords.tiles.map((t) => t.slidePath)).size).toBe(4);
    expect((await openTileDataset(coords.dir)).tiles[0].readSize).toBeGreaterThanOrEqual(64);
  });

  it('reads every tile from its slide with the same pixels the raw store kept (the same reader and resampling)', async () => {
    const a = new TileReader();
    const b = new TileReader();
    try {
      for (let i = 0; i < coords.tiles.length; i++) {
        const [x, y] = await Promise.all([readDatasetTile(coords, coords.tiles[i], a), readDatasetTile(raw, raw.tiles[i], b)]);
        expect(Buffer.compare(Buffer.from(x.data), Buffer.from(y.data)), `tile ${i}`).toBe(0);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the loader gives the same batches from either store, on worker threads too', async () => {
    const batches = async (ds: TileDataset, workers: number) => {
      const loader = new TileLoader(ds, ds.tiles, { batchSize: 16, seed: 3, workers });
      const out: Float32Array[] = [];
      for await (const b of loader.epoch(0)) out.push(b.x.data);
      await loader.close();
      return out;
    };
    const fromRaw = await batches(raw, 0);
    expect(await batches(coords, 2)).toEqual(fromRaw);
  });
});
