import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import type { TileRow } from '../../src/data/index.ts';
import { siteSeparability } from '../../src/eval/index.ts';

/** 24 patients of 4 tiles, grades 0-2; features from place(grade, tile index). */
function tiles(prefix: string, place: (grade: number, i: number) => number[], labelled = true) {
  const rows: TileRow[] = [];
  const features: number[] = [];
  for (let p = 0; p < 24; p++)
    for (let t = 0; t < 4; t++) {
      const grade = p % 3;
      rows.push({ slideId: `${prefix}${p}`, patientId: `${prefix}p${p}`, grade: labelled ? grade : undefined } as TileRow);
      features.push(...place(grade, rows.length));
    }
  return { tiles: rows, features: Float32Array.from(features) };
}

const options = { resamples: 100, seed: 1 };

describe('site separability (the audit)', () => {
  it('tiles that sit with their grade whatever their source: RI 1; a source the features name outright: decodability 1', () => {
    // Grade along axes 0-2, tile i at 1e-4 * i along axis 3 in both sources, and the source 1e-5 along
    // axis 4: a tile's nearest other-patient neighbour is the other source's tile i (same grade), nearer than
    // any same-source tile of its grade (12 tiles away); standardised, axis 4 alone separates the sources.
    const at = (source: number) => (g: number, i: number) => [g === 0 ? 1 : 0, g === 1 ? 1 : 0, g === 2 ? 1 : 0, 1e-4 * i, source];
    const r = siteSeparability(tiles('t', at(0)), tiles('s', at(1e-5)), 5, options);
    expect(r.ri!.value).toBe(1);
    expect(r.decodability.value).toBe(1);
  });

  it('tiles that sit with their source: RI 0', () => {
    // Each source its own axis; within it tiles are ordered by index (grades change every 4 tiles): the
    // neighbours are same-source tiles of every grade (OS and SS), the other source is never near (no SO).
    const at = (source: number) => (g: number, i: number) => [source, 1 - source, 1e-7 * g + 1e-4 * i];
    const r = siteSeparability(tiles('t', at(0)), tiles('s', at(1)), 3, options);
    expect(r.ri!.value).toBe(0);
  });

  it('a site drawn from the training distribution is not told apart, out of fold; an unlabelled site has no RI', () => {
    for (const seed of [1, 2, 3]) {
      const rng = createRng(seed);
      const draw = () => Array.from({ length: 6 }, () => rng.normal());
      const r = siteSeparability(tiles('t', draw), tiles('s', draw, false), 6, { resamples: 100, seed });
      expect(r.decodability.value).toBeLessThan(0.65);
      expect(r.ri).toBeNull();
    }
  });
});
