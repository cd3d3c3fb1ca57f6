import { isupFromGleason } from './grading.ts';
import { gleasonFromAreas, type GleasonFromAreas, type PatternAreas, type PatternRule } from './patternAreas.ts';

/** What a pattern head predicts per tile, in the order of its outputs. */
export const PATTERN_CLASSES = ['benign', 'gleason3', 'gleason4', 'gleason5'] as const;

/**
 * Where each pattern sits among the ISUP classes: the grade group a biopsy of that pattern alone would
 * have (benign 0, 3+3 = 1, 4+4 = 4, 5+5 = 5). A pattern head's tile probabilities are written into these
 * classes, so every tool that reads grade probabilities reads a pattern model's tiles too, and the mean
 * over a slide's tiles gives back its pattern areas exactly.
 */
export const PATTERN_ISUP = [0, 1, 4, 5] as const;

/**
 * How a pattern model turns areas into a grade, stored with the model: the ISUP rule's thresholds
 * (chosen on validation slides) and the softness that turns them into grade probabilities (fitted on
 * the same slides by log-likelihood).
 */
export interface PatternGrading {
  rule: PatternRule;
  /**
   * Each threshold decision "share >= floor" holds with probability 1 / (1 + (floor / share)^(1/softness)):
   * 0.5 at the floor, a step as softness goes to 0.
   */
  softness: number;
}

/**
 * The least softness a pattern model grades with (a share twice its floor then passes with probability
 * 0.999): a validation set the rule grades without error has its likelihood rise as softness falls to 0,
 * which would make every later slide's probabilities one-hot.
 */
export const MIN_SOFTNESS = 0.1;

/** A slide's pattern areas from pooled grade probabilities laid out by PATTERN_ISUP. */
export function patternAreasOf(gradeProbs: ArrayLike<number>): PatternAreas {
  return { benign: gradeProbs[0], g3: gradeProbs[1], g4: gradeProbs[4], g5: gradeProbs[5] };
}

/** The probability that a measured share passes a floor, by the grading's softness. */
function passes(share: number, floor: number, softness: number): number {
  if (floor <= 0) return 1;
  if (share <= 0) return 0;
  return 1 / (1 + Math.pow(floor / share, 1 / softness));
}

/**
 * Grade-group probabilities of a slide from its pattern areas: gleasonFromAreas' decisions (is there
 * cancer, which patterns are present, does a lower pattern reach the secondary's share) each made
 * softly and independently, and every combination of outcomes weighed by its probability. The most
 * probable outcome of each decision is the hard rule's, so the grade a slide is given (`grade`) is
 * gleasonFromAreas' and the probabilities say how close the areas are to the thresholds.
 */
export function patternGradeProbabilities(
  areas: PatternAreas,
  grading: PatternGrading,
): { probs: number[]; grade: number; score: GleasonFromAreas } {
  const { rule, softness } = grading;
  const score = gleasonFromAreas(areas, rule);
  const grade = score.isup;
  const probs = new Array<number>(6).fill(0);
  const cancer = areas.g3 + areas.g4 + areas.g5;
  const tissue = areas.benign + cancer;
  const pCancer = tissue > 0 ? passes(cancer / tissue, rule.minCancerShare, softness) : 0;
  probs[0] = 1 - pCancer;
  if (pCancer === 0) return { probs, grade, score };
  // Ranked as gleasonFromAreas ranks them: most extensive first, ties to the higher pattern.
  const ranked: [number, number][] = (
    [
      [3, areas.g3 / cancer],
      [4, areas.g4 / cancer],
      [5, areas.g5 / cancer],
    ] as [number, number][]
  ).sort((a, b) => b[1] - a[1] || b[0] - a[0]);
  const presence = ranked.map(([, share]) => passes(share, rule.minPatternShare, softness));
  for (let outcome = 0; outcome < 8; outcome++) {
    let weight = pCancer;
    for (let i = 0; i < 3; i++) weight *= outcome & (1 << i) ? presence[i] : 1 - presence[i];
    if (weight === 0) continue;
    const kept = ranked.filter((_, i) => outcome & (1 << i));
    const present = kept.length ? kept : ranked.slice(0, 1);
    const primary = present[0][0];
    const higher = present.slice(1).filter(([p]) => p > primary);
    if (higher.length) {
      probs[isupFromGleason(primary, Math.max(...higher.map(([p]) => p)))] += weight;
    } else if (present.length > 1) {
      const [lower, share] = present[1];
      const asSecondary = passes(share, rule.lowerSecondaryShare, softness);
      probs[isupFromGleason(primary, lower)] += weight * asSecondary;
      probs[isupFromGleason(primary, primary)] += weight * (1 - asSecondary);
    } else {
      probs[isupFromGleason(primary, primary)] += weight;
    }
  }
  return { probs, grade, score };
}
