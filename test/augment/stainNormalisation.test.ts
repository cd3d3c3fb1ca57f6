import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import { estimateStainsMacenko, labStats, MacenkoNormalizer, ReinhardNormalizer, transformFromSpec } from '../../src/augment/index.ts';
import { stainedTile, TEST_E, TEST_H } from './tiles.ts';

const angle = (a: number[], b: number[]) =>
  (Math.acos(Math.min(1, Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (Math.hypot(...a) * Math.hypot(...b)))) * 180) / Math.PI;

describe('Macenko', () => {
  it('recovers the stain vectors an image was rendered with (under 3 degrees)', () => {
    for (const [h, e] of [
      [TEST_H, TEST_E],
      [
        [0.55, 0.75, 0.36],
        [0.12, 0.9, 0.42],
      ],
    ]) {
      const tile = stainedTile(128, 3, { Io: 240, h: h.map((v) => v / Math.hypot(...h)), e: e.map((v) => v / Math.hypot(...e)) });
      const est = estimateStainsMacenko(tile)!;
      expect(est).toBeDefined();
      expect(angle(est.stains[0], h)).toBeLessThan(3);
      expect(angle(est.stains[1], e)).toBeLessThan(3);
    }
  });

  it('normalises a tile towards the target and serialises its fitted state', () => {
    const target = stainedTile(96, 5, { Io: 240, h: [0.55, 0.75, 0.36].map((v, _, a) => v / Math.hypot(...a)) });
    const n = new MacenkoNormalizer().fit(target);
    const restored = MacenkoNormalizer.fromJSON(JSON.parse(JSON.stringify(n.toJSON())));
    const src = stainedTile(96, 6, { Io: 240 });
    const a = n.transform(src);
    expect(restored.transform(src).data).toEqual(a.data);
    const est = estimateStainsMacenko(a)!;
    expect(angle(est.stains[0], n.state.stains[0])).toBeLessThan(4);
    // Glass stays as it was.
    expect([...a.data.subarray(0, 3)]).toEqual([...src.data.subarray(0, 3)]);
  });

  it('passes an all-white, all-black or one-pixel tile through', () => {
    for (const img of [
      { width: 8, height: 8, data: new Uint8Array(192).fill(255) },
      { width: 8, height: 8, data: new Uint8Array(192) },
      { width: 1, height: 1, data: Uint8Array.from([100, 50, 150]) },
    ]) {
      expect(new MacenkoNormalizer().transform(img).data).toEqual(img.data);
    }
  });
});

describe('Reinhard', () => {
  it("matches the target's LAB means and standard deviations on tissue", async () => {
    const target = stainedTile(96, 7, { h: [0.5, 0.8, 0.3].map((v, _, a) => v / Math.hypot(...a)) });
    const n = new ReinhardNormalizer().fit(target);
    const out = n.transform(stainedTile(96, 8));
    const got = labStats(out);
    const want = labStats(target);
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(got.means[c] - want.means[c])).toBeLessThan(1.5);
      expect(Math.abs(got.stds[c] - want.stds[c])).toBeLessThan(1.5);
    }
    // The registered transform with the fitted state does the same.
    const { means, stds } = n.toJSON();
    const viaTransform = await transformFromSpec({ name: 'reinhard-normalize', means, stds }).apply(stainedTile(96, 8), createRng(1));
    expect(viaTransform.data).toEqual(out.data);
    expect(() => transformFromSpec({ name: 'reinhard-normalize' })).toThrow(/means/);
  });
});

describe('Macenko against torchstain (its numpy normaliser, re-run by test/fixtures/reference/make-references.py)', () => {
  it('finds the same stain vectors and maxC, the 99th percentile over all pixels', async () => {
    const { referenceTile, references } = await import('../fixtures/reference/references.ts');
    const tile = await referenceTile();
    const est = estimateStainsMacenko(tile)!;
    const ref = references.macenko as { HE: number[][]; maxC: number[]; tissuePixels: number };
    expect(est.pixels).toBe(ref.tissuePixels);
    for (let s = 0; s < 2; s++) {
      // Eigenvector signs are arbitrary in NumPy: compare up to sign.
      const dot = est.stains[s].reduce((acc, v, c) => acc + v * ref.HE[s][c], 0);
      expect(Math.abs(dot)).toBeGreaterThan(1 - 1e-6);
    }
    expect(est.maxC[0]).toBeCloseTo(ref.maxC[0], 4);
    expect(est.maxC[1]).toBeCloseTo(ref.maxC[1], 4);
  });
});
