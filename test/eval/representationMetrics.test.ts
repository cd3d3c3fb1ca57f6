import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  confounderDominantFraction,
  cromaValues,
  lowerTailMean,
  neighbourRobustness,
  pooledShare,
  scanNeighbours,
  typedEvidence,
  type RepresentationSamples,
} from '../../src/eval/index.ts';

/** croma 1.0.0 itself on two seeded embeddings (make-representation-references.py). */
const reference = JSON.parse(readFileSync(new URL('../fixtures/reference/representation.json', import.meta.url), 'utf8'));

function samplesOf(features: number[][], labels: number[], confounders: number[], groups: number[]): RepresentationSamples {
  return {
    n: features.length,
    d: features[0].length,
    features: Float64Array.from(features.flat()),
    labels: Int32Array.from(labels),
    confounders: Int32Array.from(confounders),
    groups: Int32Array.from(groups),
  };
}

const study = (s: RepresentationSamples, kCandidates: number[], m = 5) =>
  neighbourRobustness(s, scanNeighbours(s, Math.max(...kCandidates), m), {
    kCandidates,
    classes: Math.max(...s.labels) + 1,
    resamples: 200,
    seed: 1,
    groupNames: Array.from(new Set(s.groups), String),
  });

describe('RI, MaRI and CRoMa against croma', () => {
  for (const [i, ref] of (reference.neighbours as any[]).entries()) {
    it(`reference embedding ${i + 1}: the operating k, support, RI, MaRI, tau and every sample's CRoMa equal croma's`, () => {
      const s = samplesOf(ref.features, ref.labels, ref.confounders, ref.groups);
      const r = study(s, [3, 7, 15]);
      expect(r.k).toBe(ref.k);
      expect(r.support).toBeCloseTo(ref.support, 12);
      expect(r.ri.value).toBeCloseTo(ref.ri, 12);
      expect(r.tau).toBeCloseTo(ref.tau, 12);
      expect(r.mari.value).toBeCloseTo(ref.mari, 10);
      expect(r.croma.values.length).toBe(ref.cromaSamples.length);
      r.croma.values.forEach((v, j) => expect(v, `sample ${j}`).toBeCloseTo(ref.cromaSamples[j], 10));
      expect(r.croma.median.value).toBeCloseTo(ref.cromaMedian, 10);
      expect(r.croma.ltm10.value).toBeCloseTo(ref.cromaLtm10, 10);
      expect(r.croma.f0.value).toBeCloseTo(ref.cromaF0, 12);
      // The group bootstrap brackets the point value and repeats itself under the same seed.
      expect(r.ri.ci95[0]).toBeLessThanOrEqual(r.ri.value);
      expect(r.ri.ci95[1]).toBeGreaterThanOrEqual(r.ri.value);
      expect(study(s, [3, 7, 15]).ri.ci95).toEqual(r.ri.ci95);
    });
  }
});

/** Two labels x two confounders, 6 samples per cell, one sample per group (croma's harness layout). */
function cells(place: (label: number, confounder: number, r: number) => number[]): RepresentationSamples {
  const features: number[][] = [];
  const labels: number[] = [];
  const confounders: number[] = [];
  for (let l = 0; l < 2; l++)
    for (let c = 0; c < 2; c++)
      for (let r = 0; r < 6; r++) {
        features.push(place(l, c, r));
        labels.push(l);
        confounders.push(c);
      }
  return samplesOf(
    features,
    labels,
    confounders,
    labels.map((_, i) => i),
  );
}

describe('configurations whose values follow from their construction', () => {
  it('biology owns the directions: every typed neighbour is SO, RI = MaRI = 1 and every CRoMa margin is positive', () => {
    // Label l along axis l; along a third axis by a hair, the two confounder values alternate.
    const s = cells((l, c, r) => [l === 0 ? 1 : 0, l === 1 ? 1 : 0, 0.001 * (2 * r + c)]);
    const r = study(s, [3]);
    expect([r.ri.value, r.mari.value, r.support]).toEqual([1, 1, 1]);
    expect(Math.min(...r.croma.values)).toBeGreaterThan(0);
    expect(r.croma.f0.value).toBe(0);
  });

  it('the confounder owns the directions: every typed neighbour is OS, RI = MaRI = 0 and F(0) = 1', () => {
    const s = cells((l, c, r) => [c === 0 ? 1 : 0, c === 1 ? 1 : 0, 0.001 * (2 * r + l)]);
    const r = study(s, [3]);
    expect([r.ri.value, r.mari.value]).toEqual([0, 0]);
    expect(Math.max(...r.croma.values)).toBeLessThan(0);
    expect(r.croma.f0.value).toBe(1);
  });

  it('exactly contested: SO and OS at the same distance give RI 0.5, MaRI 0.5 and CRoMa 0 for every sample', () => {
    // Per block r a square: (l, c) at the corners (2l - 1, 2c - 1), SO and OS one side away and OO on the
    // diagonal, on a shared offset plus the block's own axis. Every row has the same norm, so within a block
    // SO and OS tie and OO is farther, and every sample of another block is equally far.
    const s = cells((l, c, r) => {
      const v = new Array(19).fill(0);
      v[2 * r] = 2 * l - 1;
      v[2 * r + 1] = 2 * c - 1;
      v[12] = 10;
      v[13 + r] = 3;
      return v;
    });
    const r = study(s, [3]);
    expect(r.ri.value).toBe(0.5);
    expect(r.mari.value).toBeCloseTo(0.5, 14);
    for (const v of r.croma.values) expect(v).toBeCloseTo(0, 12);
  });

  it("a sample's own group is never its neighbour, however close", () => {
    // Each group holds a same-label other-confounder twin at distance 0: counted, it would make RI 1.
    const features: number[][] = [];
    const labels: number[] = [];
    const confounders: number[] = [];
    const groups: number[] = [];
    for (let g = 0; g < 16; g++)
      for (const twin of [0, 1]) {
        const c = (g + twin) % 2;
        features.push([c === 0 ? 1 : 0, c === 1 ? 1 : 0, 0.001 * g]);
        labels.push(g % 2);
        confounders.push(c);
        groups.push(g);
      }
    const s = samplesOf(features, labels, confounders, groups);
    const scan = scanNeighbours(s, 5, 2);
    for (let i = 0; i < s.n; i++)
      for (let r = 0; r < scan.counts[i]; r++) expect(s.groups[scan.idx[i * scan.kmax + r]]).not.toBe(s.groups[i]);
    expect(pooledShare(typedEvidence(s, scan, 5))).toBeLessThan(0.5);
  });

  it('CRoMa is NaN where fewer than m typed neighbours exist, and the tail statistics skip it', () => {
    const s = cells((l, c, r) => [l + 1, c + 1, r]);
    const scan = scanNeighbours(s, 3, 7);
    expect(cromaValues(scan).every(Number.isNaN)).toBe(true);
    expect(lowerTailMean([NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(1);
    // NumPy: percentile([1..10], 10) = 1.9, so the tail is {1}; with 20 values it is {1, 2} (q = 2.9).
    expect(lowerTailMean(Array.from({ length: 20 }, (_, i) => i + 1))).toBe(1.5);
    expect(confounderDominantFraction([-1, 0, 0.5, NaN])).toBeCloseTo(2 / 3, 15);
  });
});
