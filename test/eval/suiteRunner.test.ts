import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../../src/core/index.ts';
import {
  buildTileDataset,
  openTileDataset,
  readManifest,
  spreadTilesPerSlide,
  type TileDataset,
  type TileRow,
} from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { runSuiteUnits, type SuiteScorer, type SuiteUnit, type UnitResult } from '../../src/eval/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
let ds: TileDataset;
let tiles: TileRow[];

/**
 * A scorer that is a fixed function of the pixels (mean red and blue decide the class), recording a
 * digest of every image it sees, so runs can be compared pixel for pixel.
 */
function pixelScorer(seen: string[]): SuiteScorer {
  return {
    classes: [0, 1, 2, 3, 4, 5],
    head: 'softmax',
    async score(images: readonly RgbImage[]) {
      const probs = new Float32Array(images.length * 6);
      images.forEach((img, i) => {
        let r = 0;
        let b = 0;
        let h = 0;
        for (let p = 0; p < img.data.length; p += 3) {
          r += img.data[p];
          b += img.data[p + 2];
          h = (h * 31 + img.data[p + 1]) >>> 0;
        }
        seen.push(`${img.width}:${h}`);
        const c = Math.min(5, Math.floor(((r - b) / (img.data.length / 3) + 40) / 16));
        probs.fill(0.02, i * 6, i * 6 + 6);
        probs[i * 6 + Math.max(0, c)] = 0.9;
      });
      return { probs };
    },
  };
}

const units: SuiteUnit[] = [
  { condition: 'clean', severity: 0 },
  { condition: 'jpeg', severity: 3, transform: { name: 'jpeg', severity: 3 } },
  { condition: 'noise', severity: 2, transform: { name: 'gaussian-noise', severity: 2 } },
  { condition: 'eosin-up', severity: 4, transform: { name: 'stain-e', direction: 'increase', severity: 4 } },
];

async function run(options: { workers: number; blockBytes?: number; batchSize?: number }, roles = ['model']) {
  const results = new Map<string, UnitResult>();
  const seen = new Map<string, string[]>(roles.map((r) => [r, []]));
  await runSuiteUnits(
    ds,
    tiles,
    roles.map((role) => ({ role, scorer: pixelScorer(seen.get(role)!), pending: units })),
    {
      resamples: 50,
      seed: 7,
      ...options,
      onUnit: (role, r) => void results.set(`${role}/${r.condition}/${r.severity}`, r),
    },
  );
  return { results, seen };
}

const metrics = (m: Map<string, UnitResult>) => [...m].map(([k, r]) => [k, r.qwk, r.accuracy, r.ece, r.perSite]).sort();

beforeAll(async () => {
  const { manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 6,
    out: join(dir, 'slides'),
    size: 512,
    sites: 2,
    anomalies: 0,
    seed: 4,
  });
  ds = await buildTileDataset(readManifest(manifest), { out: join(dir, 'tiles'), tileSize: 64, mpp: 1, stride: 64, minTissue: 0.3 });
  ds = await openTileDataset(join(dir, 'tiles'));
  tiles = spreadTilesPerSlide(ds.tiles, 5);
}, 600_000);

describe('robustness suite runner', () => {
  it('gives the same pixels and results inline, in worker threads, in blocks and in batches of any size', async () => {
    const inline = await run({ workers: 0 });
    expect(inline.results.size).toBe(units.length);
    expect(inline.seen.get('model')).toHaveLength(units.length * tiles.length);
    for (const options of [
      { workers: 2 },
      { workers: 0, blockBytes: 64 * 64 * 3 * 7, batchSize: 3 },
      { workers: 1, blockBytes: 64 * 64 * 3 * 4 },
    ]) {
      const other = await run(options);
      expect(metrics(other.results), JSON.stringify(options)).toEqual(metrics(inline.results));
      expect([...other.seen.get('model')!].sort(), JSON.stringify(options)).toEqual([...inline.seen.get('model')!].sort());
    }
  }, 600_000);

  it('perturbs the tiles (the conditions differ from clean) and gives the model and its baseline the same perturbed tiles', async () => {
    const { seen } = await run({ workers: 0 }, ['model', 'baseline']);
    expect(seen.get('baseline')).toEqual(seen.get('model'));
    const per = tiles.length;
    const model = seen.get('model')!;
    for (let u = 1; u < units.length; u++) expect(model.slice(u * per, (u + 1) * per)).not.toEqual(model.slice(0, per));
  }, 600_000);

  it('refuses a bad transform before any work', async () => {
    await expect(
      runSuiteUnits(
        ds,
        tiles,
        [{ role: 'model', scorer: pixelScorer([]), pending: [{ condition: 'x', severity: 1, transform: { name: 'no-such' } }] }],
        { resamples: 10, seed: 1 },
      ),
    ).rejects.toThrow(/unknown transform "no-such"/);
  });
});
