import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildTileDataset,
  EmbeddingCache,
  fromHalfBits,
  openTileDataset,
  readManifest,
  toHalfBits,
  type TileDataset,
} from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { tempDir } from '../helpers.ts';

describe('float16 (IEEE 754 binary16)', () => {
  it('encodes the textbook values bit for bit', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [0, 0],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [v, bits] of cases) expect(toHalfBits(v), String(v)).toBe(bits);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(Number.isNaN(fromHalfBits(0x7e00))).toBe(true);
  });

  it('decodes every finite half exactly, and encoding gives the bits back', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      const v = fromHalfBits(h);
      // -0 and +0 both encode from their own sign.
      expect(toHalfBits(v)).toBe(h);
    }
  });
});

describe('embedding cache', () => {
  const dir = tempDir();
  let ds: TileDataset;
  const encoder = { path: 'enc.onnx', sha256: 'e'.repeat(64), inputSize: 8, mean: [0, 0, 0], std: [1, 1, 1] };
  const vector = (t: { index: number }, d: number) => Float32Array.from({ length: d }, (_, j) => t.index * 10 + j + 0.25);

  beforeAll(async () => {
    const { manifest } = await generateSynthetic({
      task: 'prostate',
      slides: 3,
      out: join(dir, 'slides'),
      size: 768,
      sites: 1,
      anomalies: 0,
      seed: 2,
    });
    ds = await buildTileDataset(readManifest(manifest), { out: join(dir, 'tiles'), tileSize: 64, mpp: 1, stride: 64, minTissue: 0.3 });
  }, 600_000);

  it('stores slide by slide and reads any subset of tiles in any order', async () => {
    const cache = await EmbeddingCache.create(ds, { encoder, dim: 4, dtype: 'float32' });
    const [first, ...rest] = cache.slides();
    const fill = (slide: string) => {
      const tiles = cache.tilesOf(slide);
      const out = new Float32Array(tiles.length * 4);
      tiles.forEach((t, i) => out.set(vector(t, 4), i * 4));
      return out;
    };
    await cache.write(first, fill(first));
    expect(cache.has(first)).toBe(true);
    expect(cache.missing(ds.tiles)).toEqual(rest);
    expect(rest.length).toBeGreaterThan(0);
    expect(() => cache.read(ds.tiles)).toThrow(new RegExp(`embeddings of ${rest.length} slide\\(s\\) are missing`));
    for (const s of rest) await cache.write(s, fill(s));
    const picked = [ds.tiles[5], ds.tiles[0], ds.tiles[ds.tiles.length - 1]];
    const got = EmbeddingCache.open(ds, encoder)!.read(picked);
    picked.forEach((t, i) => expect(Array.from(got.subarray(i * 4, i * 4 + 4))).toEqual(Array.from(vector(t, 4))));
  });

  it('float16 caches keep values within half precision', async () => {
    const enc = { ...encoder, sha256: 'f'.repeat(64) };
    const cache = await EmbeddingCache.create(ds, { encoder: enc, dim: 3, dtype: 'float16' });
    for (const s of cache.slides()) {
      const tiles = cache.tilesOf(s);
      await cache.write(
        s,
        Float32Array.from({ length: tiles.length * 3 }, (_, i) => Math.sin(i) * 3),
      );
    }
    const got = cache.read(cache.tilesOf(cache.slides()[0]));
    got.forEach((v, i) => expect(Math.abs(v - Math.sin(i) * 3)).toBeLessThanOrEqual(2 ** -10 * 2));
    await expect(EmbeddingCache.create(ds, { encoder: enc, dim: 3, dtype: 'float32' })).rejects.toThrow(
      /holds float16 embeddings of width 3, not float32/,
    );
    expect((await EmbeddingCache.create(ds, { encoder: enc, dim: 3 })).index.dtype).toBe('float16');
  });

  it("a re-tiled dataset does not reuse another tiling's cache", async () => {
    const changed = await openTileDataset(join(dir, 'tiles'));
    changed.tiles = changed.tiles.slice(1);
    expect(EmbeddingCache.open(changed, encoder)).toBeUndefined();
    await expect(EmbeddingCache.create(changed, { encoder, dim: 4 })).rejects.toThrow(/another tiling of this dataset/);
    writeFileSync(join(EmbeddingCache.open(ds, encoder)!.dir, 'index.json'), '{"format": 1');
    expect(() => EmbeddingCache.open(ds, encoder)).toThrow(/index\.json: embedding index is not valid JSON/);
  });
});
