import { describe, expect, it } from 'vitest';
import { DEFAULT_PATTERN_RULE, gleasonFromAreas, type PatternAreas } from '../../src/core/index.ts';
import { quadraticWeightedKappa } from '../../src/metrics/index.ts';
import { choosePatternGrading, DEFAULT_PATTERN_GRADING, validationSlides, type ValidationSlide } from '../../src/train/index.ts';
import { gradingLogLoss } from '../../src/train/patternRule.ts';
import type { TileRow } from '../../src/data/index.ts';

const areas = (benign: number, g3: number, g4: number, g5: number): PatternAreas => ({ benign, g3, g4, g5 });

describe('choosing the pattern rule on validation slides', () => {
  // A model that sees 15-18% pattern 3 in benign slides and 3% pattern 4 in a 3+3 slide: the pathology
  // rule's 1% floors call the benign slides cancer and the 3+3 slide 3+4.
  const slides: ValidationSlide[] = [
    { areas: areas(0.85, 0.15, 0, 0), label: 0 },
    { areas: areas(0.82, 0.18, 0, 0), label: 0 },
    { areas: areas(0.3, 0.68, 0.02, 0), label: 1 },
    { areas: areas(0.2, 0.5, 0.3, 0), label: 2 },
    { areas: areas(0.2, 0.25, 0.55, 0), label: 3 },
    { areas: areas(0.1, 0, 0.9, 0), label: 4 },
    { areas: areas(0.1, 0, 0.5, 0.4), label: 5 },
  ];

  it('grades every slide right with the widest margins: each floor between the slides it must separate', () => {
    const labels = slides.map((s) => s.label);
    const byDefault = slides.map((s) => gleasonFromAreas(s.areas, DEFAULT_PATTERN_RULE).isup);
    expect(byDefault.slice(0, 3)).toEqual([1, 1, 2]);
    expect(quadraticWeightedKappa(labels, byDefault, 6)).toBeLessThan(1);
    const chosen = choosePatternGrading(slides);
    expect(chosen.qwk).toBe(1);
    expect(slides.map((s) => gleasonFromAreas(s.areas, chosen.rule).isup)).toEqual(labels);
    // Cancer: between the benign slides' 18% and the cancers' 70%, the grid's value nearest their
    // log-midpoint (35%) is 30% (0.2 and 0.5 grade as well, nearer one side). A pattern: between the 3+3
    // slide's 2.9% of pattern 4 and the 4+3 slide's 31% of pattern 3, midpoint 9.5%: 10%. A lower
    // secondary: only the 4+3 slide's 31% must pass, so the lowest floor is furthest from it.
    expect(chosen.rule).toEqual({ minCancerShare: 0.3, minPatternShare: 0.1, lowerSecondaryShare: 0.02 });
    // Softness is fitted by log-loss: no grid value does better, including the default's.
    expect(chosen.logLoss).toBeLessThanOrEqual(gradingLogLoss(slides, { rule: chosen.rule, softness: 0.5 }) + 1e-12);
    expect(chosen.logLoss).toBeCloseTo(gradingLogLoss(slides, chosen), 12);
  });

  it('breaks a tie in margins toward the pathology rule', () => {
    // One benign and one 3+3 slide without any false pattern: every floor grades them, and the margins
    // do not depend on the pattern floors (the only pattern is primary whether or not it passes one).
    const clean = [
      { areas: areas(1, 0, 0, 0), label: 0 },
      { areas: areas(0.2, 0.8, 0, 0), label: 1 },
    ];
    const rule = choosePatternGrading(clean).rule;
    expect([rule.minPatternShare, rule.lowerSecondaryShare]).toEqual([0.01, 0.05]);
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
