import { describe, expect, it } from 'vitest';
import type { TileRow } from '../../src/data/index.ts';
import { oodStudy } from '../../src/eval/index.ts';

const tile = (slide: string, anomaly: string, fraction: number | undefined, i: number): TileRow => ({
  index: i,
  slideId: slide,
  patientId: `pat-${slide}`,
  site: 'a',
  scanner: 'a',
  grade: 1,
  labels: {},
  anomaly,
  x: i,
  y: 0,
  level: 0,
  mpp: 1,
  tissue: 1,
  shard: 's',
  offset: 0,
  length: 0,
  anomalyFraction: fraction,
});

describe('OOD study with tile-level truth', () => {
  // 10 in-distribution slides of 4 tiles scoring 0-1; 6 pen-marked slides whose marked tiles (mask
  // share 0.8) score 5 and whose clean tiles (share 0) and edge tiles (share 0.2) score like ID tiles.
  const idTiles = Array.from({ length: 40 }, (_, i) => tile(`id${Math.floor(i / 4)}`, '', 0, i));
  const oodTiles = Array.from({ length: 36 }, (_, i) => tile(`ood${Math.floor(i / 6)}`, 'pen-mark', [0.8, 0.8, 0, 0, 0.2, 0.2][i % 6], i));
  const id = Float64Array.from(idTiles, (_, i) => (i % 10) / 10);
  const ood = Float64Array.from(oodTiles, (t, i) => (t.anomalyFraction! >= 0.5 ? 5 : (i % 10) / 10));
  const run = (tiles: TileRow[]) =>
    oodStudy({ idTiles, oodTiles: tiles, scores: new Map([['d', { id, ood }]]), topK: 2, groupOf: () => 'far', resamples: 50, seed: 1 });

  it('labels a tile OOD by its own mask share and leaves ambiguous and clean tiles of OOD slides out', () => {
    const s = run(oodTiles);
    expect(s.tileTruth).toBe('mask');
    expect(s.oodTilesUsed).toBe(12);
    expect(s.tilesExcluded).toBe(24);
    expect(s.detectors.d.all.tile!.auroc.value).toBe(1);
    expect(s.detectors.d.groups['pen-mark'].tile!.auroc.value).toBe(1);
    // Slides: the top-2 tiles of each pen slide score 5.
    expect(s.detectors.d.all.slide.auroc.value).toBe(1);
  });

  it('without masks every tile of an OOD slide counts as OOD, which understates tile-level detection', () => {
    const s = run(oodTiles.map((t) => ({ ...t, anomalyFraction: undefined })));
    expect(s.tileTruth).toBe('slide');
    expect(s.detectors.d.all.tile!.auroc.value).toBeLessThan(0.75);
    expect(s.detectors.d.all.slide.auroc.value).toBe(1);
  });
});
