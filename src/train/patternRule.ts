import {
  DEFAULT_PATTERN_RULE,
  log,
  MIN_SOFTNESS,
  type ModelMeta,
  gleasonFromAreas,
  groupBy,
  patternGradeProbabilities,
  type PatternAreas,
  type PatternGrading,
  type PatternRule,
} from '../core/index.ts';
import { classIndex, poolTileProbs, quadraticWeightedKappa, type PooledTiles } from '../metrics/index.ts';

/** The softness a pattern model grades with before validation has chosen one. */
export const DEFAULT_SOFTNESS = 0.5;

/** What training validates a pattern model with before its own rule is chosen. */
export const DEFAULT_PATTERN_GRADING: PatternGrading = { rule: DEFAULT_PATTERN_RULE, softness: DEFAULT_SOFTNESS };

/** The thresholds validation chooses among: the pathology rule's values and a few either side. */
export const RULE_GRID = {
  minCancerShare: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
  minPatternShare: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
  lowerSecondaryShare: [0.02, 0.05, 0.1, 0.2, 0.3],
};

/** Softness values the log-likelihood fit searches: from MIN_SOFTNESS to very soft. */
const SOFTNESS_GRID = Array.from({ length: 31 }, (_, i) =>
  Math.exp(Math.log(MIN_SOFTNESS) + (i / 30) * (Math.log(4) - Math.log(MIN_SOFTNESS))),
);

/** A validation slide: its predicted pattern areas and its grade group (class index 0-5). */
export interface ValidationSlide {
  areas: PatternAreas;
  label: number;
}

/** How far a rule is from the pathology rule, on a log scale: ties in QWK go to the nearer rule. */
function distanceFromDefault(rule: PatternRule): number {
  return (Object.keys(rule) as (keyof PatternRule)[]).reduce((a, key) => a + Math.abs(Math.log(rule[key] / DEFAULT_PATTERN_RULE[key])), 0);
}

/** Mean negative log-likelihood of the slides' grades under a grading (probabilities floored at 1e-6). */
export function gradingLogLoss(slides: readonly ValidationSlide[], grading: PatternGrading): number {
  let sum = 0;
  for (const s of slides) sum -= Math.log(Math.max(1e-6, patternGradeProbabilities(s.areas, grading).probs[s.label]));
  return sum / slides.length;
}

/**
 * The rule a pattern model grades with, chosen on validation slides: the thresholds of RULE_GRID with
 * the best QWK; among rules that grade the slides equally well, the one with the widest margins (the
 * lowest log-loss of the rule made soft at the default softness: the validation slides' areas furthest
 * from its thresholds), then the nearest to the pathology rule's 1% / 1% / 5%; then the softness with
 * the lowest log-loss for it (softness changes the probabilities, never the grade). Validation sets are
 * small: the margins keep a threshold from sitting just above the highest false-positive share the
 * validation slides happened to show (measured on the full demo: a pattern floor of 2%, the nearest to
 * the published 1% among the ties, called every held-out 3+3 slide 3+4).
 */
export function choosePatternGrading(slides: readonly ValidationSlide[]): PatternGrading & { qwk: number; logLoss: number } {
  if (!slides.length) throw new Error('choosing a pattern rule needs validation slides');
  const labels = slides.map((s) => s.label);
  let best = { rule: DEFAULT_PATTERN_RULE, qwk: -Infinity, margin: Infinity, distance: Infinity };
  for (const minCancerShare of RULE_GRID.minCancerShare)
    for (const minPatternShare of RULE_GRID.minPatternShare)
      for (const lowerSecondaryShare of RULE_GRID.lowerSecondaryShare) {
        const rule = { minCancerShare, minPatternShare, lowerSecondaryShare };
        const q = quadraticWeightedKappa(
          labels,
          slides.map((s) => gleasonFromAreas(s.areas, rule).isup),
          6,
        );
        const qwk = Number.isFinite(q) ? q : -1;
        if (qwk < best.qwk - 1e-12) continue;
        const margin = gradingLogLoss(slides, { rule, softness: DEFAULT_SOFTNESS });
        const distance = distanceFromDefault(rule);
        const better =
          qwk > best.qwk + 1e-12 || margin < best.margin - 1e-12 || (Math.abs(margin - best.margin) <= 1e-12 && distance < best.distance);
        if (better) best = { rule, qwk, margin, distance };
      }
  let softness = DEFAULT_SOFTNESS;
  let logLoss = Infinity;
  for (const s of SOFTNESS_GRID) {
    const loss = gradingLogLoss(slides, { rule: best.rule, softness: s });
    if (loss < logLoss) [softness, logLoss] = [s, loss];
  }
  return { rule: best.rule, softness, qwk: best.qwk, logLoss };
}

/** Validation slides from a pattern head's tile probabilities: each labelled slide's mean pattern areas. */
export function validationSlides(p: PooledTiles, classes: number[]): ValidationSlide[] {
  const slides: ValidationSlide[] = [];
  const bySlide = groupBy(
    p.tiles,
    (t) => t.slideId,
    (_, i) => i,
  );
  for (const idx of bySlide.values()) {
    const label = classIndex(p.tiles[idx[0]].grade, classes);
    const grade = poolTileProbs(
      idx.length,
      p.k,
      (j) => p.probs.subarray(idx[j] * p.k, (idx[j] + 1) * p.k),
      'patterns',
      'mean',
      undefined,
      DEFAULT_PATTERN_GRADING,
    );
    if (label !== undefined && grade?.patterns) slides.push({ areas: grade.patterns, label });
  }
  return slides;
}

/** Training validates a pattern model by the pathology rule: its own is chosen once training ends. */
const DEFAULT_CHOSEN_ON = { split: 'none', fold: 0, slides: 0, qwk: null, logLoss: null };

/**
 * A pattern model's grading for its gradelab.json, chosen on validation slides from its tile
 * probabilities there (the kept weights'); the pathology rule when no validation slide has a grade.
 */
export function gradingFromValidation(p: PooledTiles, classes: number[], fold: number): NonNullable<ModelMeta['patternGrading']> {
  const slides = validationSlides(p, classes);
  if (!slides.length) return { ...DEFAULT_PATTERN_GRADING, chosenOn: DEFAULT_CHOSEN_ON };
  const chosen = choosePatternGrading(slides);
  const r = chosen.rule;
  log.info(
    `pattern rule chosen on ${slides.length} validation slides: cancer from ${r.minCancerShare}, patterns from ${r.minPatternShare}, a lower secondary from ${r.lowerSecondaryShare} of the cancer (QWK ${chosen.qwk.toFixed(3)}); softness ${chosen.softness.toFixed(3)} (log-loss ${chosen.logLoss.toFixed(3)})`,
  );
  return {
    rule: r,
    softness: chosen.softness,
    chosenOn: { split: 'val', fold, slides: slides.length, qwk: chosen.qwk, logLoss: chosen.logLoss },
  };
}
