import { describe, expect, it } from 'vitest';
import { rgbToHed } from '../../src/augment/index.ts';
import { buildScene, designSlides, LABEL, QuantileMap, renderRegion, SITES, type LookAlikeStains } from '../../src/synth/index.ts';
import { tempDir } from '../helpers.ts';

/** Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs. */
function ksDistance(a: number[], b: number[]): number {
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] <= v) i++;
    while (j < y.length && y[j] <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

const median = (v: number[]) => Float64Array.from(v).sort()[Math.floor((v.length - 1) / 2)];

/**
 * A look-alike slide rendered whole, and the haematoxylin and eosin optical densities of its pixels
 * as a stain-based quality check measures them (Ruifrok & Johnston unmixing of the RGB), split into
 * the look-alike's (mask value anomaly) and the rest of the tissue's.
 */
function renderedStains(seed: number, kind: 'lymphoid' | 'mucinous', stains: LookAlikeStains) {
  const slide = designSlides({
    task: 'prostate',
    slides: 12,
    out: tempDir(),
    size: 768,
    anomalies: 1,
    anomalyKinds: [kind],
    lookAlikeStains: stains,
    seed,
  })[0];
  const scene = buildScene(slide);
  const { rgb, labels } = renderRegion(
    scene,
    SITES.find((s) => s.name === slide.site)!,
    0,
    0,
    slide.width,
    slide.height,
  );
  const hed = rgbToHed(rgb);
  const lookAlike = { h: [] as number[], e: [] as number[] };
  const tissue = { h: [] as number[], e: [] as number[] };
  for (let p = 0; p < labels.length; p++) {
    if (labels[p] === LABEL.background) continue;
    const into = labels[p] === LABEL.anomaly ? lookAlike : tissue;
    into.h.push(hed[p * 3]);
    into.e.push(hed[p * 3 + 1]);
  }
  return { lookAlike, tissue };
}

describe('QuantileMap', () => {
  it('carries a distribution onto a linear transform of itself exactly, and shifts beyond the sampled range', () => {
    const source = Array.from({ length: 100 }, (_, i) => i / 100);
    const map = QuantileMap.between(
      source,
      source.map((v) => 1 + 2 * v),
    );
    for (const v of [0, 0.3, 0.505, 0.99]) expect(map.map(v)).toBeCloseTo(1 + 2 * v, 9);
    // Above the source's maximum 0.99: the target's maximum 2.98 plus the excess 0.51.
    expect(map.map(1.5)).toBeCloseTo(3.49, 9);
    expect(map.map(-0.25)).toBeCloseTo(0.75, 9);
  });

  it('spreads a point mass over the target range it ranks into, by the dither', () => {
    // Half the source is exactly 0 (a constant cytoplasm); the target is uniform on [0, 1].
    const source = [...Array.from({ length: 500 }, () => 0), ...Array.from({ length: 500 }, (_, i) => 1 + i / 499)];
    const target = Array.from({ length: 1001 }, (_, i) => i / 1000);
    const map = QuantileMap.between(source, target);
    expect(map.map(0, 0)).toBeCloseTo(0, 9);
    // The mass spans ranks 0 to 0.5 up to the grid's step (1/256).
    expect(Math.abs(map.map(0, 1) - 0.5)).toBeLessThanOrEqual(1 / 256);
    expect(Math.abs(map.map(0, 0.5) - 0.25)).toBeLessThanOrEqual(1 / 256);
    const mapped = source.map((v, k) => map.map(v, (k * 0.618034) % 1));
    expect(ksDistance(mapped, target)).toBeLessThan(0.01);
  });
});

describe('near-OOD look-alikes stained as the tissue they replace', () => {
  // Tolerance: Kolmogorov-Smirnov distance <= 0.08 between the look-alike's and the tissue's H and E
  // optical densities, medians within 0.01 OD. Natural stains differ by KS 0.5-0.9 (lymphocytes are
  // dense haematoxylin, mucin pale), which is what let pixel-QC detectors catch them by colour.
  for (const kind of ['lymphoid', 'mucinous'] as const) {
    it(`${kind}: H and E optical-density distributions match within KS 0.08, where natural stains do not`, () => {
      for (const seed of [3, 8]) {
        const matched = renderedStains(seed, kind, 'matched');
        expect(matched.lookAlike.h.length, `seed ${seed}`).toBeGreaterThan(2000);
        for (const c of ['h', 'e'] as const) {
          expect(ksDistance(matched.lookAlike[c], matched.tissue[c]), `${c} seed ${seed}`).toBeLessThanOrEqual(0.08);
          expect(Math.abs(median(matched.lookAlike[c]) - median(matched.tissue[c])), `${c} seed ${seed}`).toBeLessThanOrEqual(0.01);
        }
        const natural = renderedStains(seed, kind, 'natural');
        // The same slide's shapes: matching changes stains, never the look-alike's extent.
        expect(natural.lookAlike.h.length).toBe(matched.lookAlike.h.length);
        expect(Math.max(...(['h', 'e'] as const).map((c) => ksDistance(natural.lookAlike[c], natural.tissue[c])))).toBeGreaterThan(0.4);
      }
    });
  }

  it('refuses an unknown anomaly kind or stain mode with one line', () => {
    const base = { task: 'prostate' as const, slides: 2, out: tempDir(), size: 512, anomalies: 1 };
    expect(() => designSlides({ ...base, anomalyKinds: ['lymphoma' as never] })).toThrow(
      /unknown anomaly kind "lymphoma"; known: lymphoid/,
    );
    expect(() => designSlides({ ...base, lookAlikeStains: 'grey' as never })).toThrow(/--look-alike-stains must be matched or natural/);
  });
});
