import { describe, expect, it } from 'vitest';
import { DEFAULT_PATTERN_RULE, gleasonFromAreas, type PatternAreas } from '../../src/core/index.ts';
import { quadraticWeightedKappa } from '../../src/metrics/index.ts';
import { choosePatternGrading, DEFAULT_PATTERN_GRADING, validationSlides, type ValidationSlide } from '../../src/train/index.ts';
import { gradingLogLoss } from '../../src/train/patternRule.ts';
import type { TileRow } from '../../src/data/index.ts';

const areas = (benign: number, g3: number, g4: number, g5: number): PatternAreas => ({ benign, g3, g4, g5 });

describe('choosing the pattern rule on validation slides', () => {
  // A model that sees 15-18% pattern 3 in benign slides: the pathology rule's 1% calls them all cancer.
  const slides: ValidationSlide[] = [
    { areas: areas(0.85, 0.15, 0, 0), label: 0 },
    { areas: areas(0.82, 0.18, 0, 0), label: 0 },
    { areas: areas(0.3, 0.7, 0, 0), label: 1 },
    { areas: areas(0.2, 0.5, 0.3, 0), label: 2 },
    { areas: areas(0.2, 0.25, 0.55, 0), label: 3 },
    { areas: areas(0.1, 0, 0.9, 0), label: 4 },
    { areas: areas(0.1, 0, 0.5, 0.4), label: 5 },
  ];

  it('moves the cancer floor above what the model sees in benign slides, and no further than it must', () => {
    const labels = slides.map((s) => s.label);
    const byDefault = slides.map((s) => gleasonFromAreas(s.areas, DEFAULT_PATTERN_RULE).isup);
    expect(byDefault.slice(0, 2)).toEqual([1, 1]);
    const chosen = choosePatternGrading(slides);
    // 0.2 is the grid's nearest floor to 1% that leaves 18% benign: 0.3 and 0.5 grade as well but lie further.
    expect(chosen.rule).toEqual({ minCancerShare: 0.2, minPatternShare: 0.01, lowerSecondaryShare: 0.05 });
    expect(chosen.qwk).toBe(1);
    expect(quadraticWeightedKappa(labels, byDefault, 6)).toBeLessThan(1);
    // Softness is fitted by log-loss: no grid value does better, including the default's.
    expect(chosen.logLoss).toBeLessThanOrEqual(gradingLogLoss(slides, { rule: chosen.rule, softness: 0.5 }) + 1e-12);
    expect(chosen.logLoss).toBeCloseTo(gradingLogLoss(slides, chosen), 12);
  });

  it('keeps the pathology rule when it already grades every slide right', () => {
    const clean = slides.map((s, i) => (i < 2 ? { ...s, areas: areas(1, 0, 0, 0) } : s));
    expect(choosePatternGrading(clean).rule).toEqual(DEFAULT_PATTERN_RULE);
  });

  it("pools a pattern head's tiles into each labelled slide's mean areas", () => {
    const t = (slideId: string, grade?: number) => ({ slideId, grade, patientId: 'p', labels: {} }) as unknown as TileRow;
    const probs = Float32Array.from([...[1, 0, 0, 0, 0, 0], ...[0, 0.5, 0, 0, 0.5, 0], ...[0, 0, 0, 0, 0, 1], ...[0.5, 0.5, 0, 0, 0, 0]]);
    const got = validationSlides(
      { tiles: [t('a', 2), t('a', 2), t('b', 5), t('c')], k: 6, probs, head: 'patterns', grading: DEFAULT_PATTERN_GRADING },
      [0, 1, 2, 3, 4, 5],
    );
    expect(got).toEqual([
      { areas: areas(0.5, 0.25, 0.25, 0), label: 2 },
      { areas: areas(0, 0, 0, 1), label: 5 },
    ]);
  });
});
