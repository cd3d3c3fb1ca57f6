import { isupFromGleason } from './grading.ts';

/** Areas of a slide's tissue by Gleason pattern (any unit: tiles, pixels, summed probabilities). */
export interface PatternAreas {
  /** Benign tissue (stroma and benign epithelium). */
  benign: number;
  g3: number;
  g4: number;
  g5: number;
}

/**
 * The thresholds that turn measured areas into a Gleason score. A model's are chosen on validation
 * slides and stored with it; the defaults are the pathology rule's 5% and small noise floors.
 */
export interface PatternRule {
  /** Below this share of the tissue, cancer is not called at all (the slide is benign). */
  minCancerShare: number;
  /** Below this share of the cancer, a pattern is noise and not present. */
  minPatternShare: number;
  /** A pattern lower than the primary counts as secondary only from this share of the cancer (ISUP: 5%). */
  lowerSecondaryShare: number;
}

export const DEFAULT_PATTERN_RULE: PatternRule = { minCancerShare: 0.01, minPatternShare: 0.01, lowerSecondaryShare: 0.05 };

export interface GleasonFromAreas {
  primary: number;
  secondary: number;
  isup: number;
  /** Share of each pattern in the cancer (0 for a benign slide). */
  shares: { g3: number; g4: number; g5: number };
}

/**
 * A needle biopsy's Gleason score and ISUP grade group from its pattern areas, by the ISUP 2014 rules
 * (Epstein et al., Am J Surg Pathol 2016) as the Radboud system and PANDA's labels apply them:
 * primary is the most extensive pattern; a pattern higher than the primary is the secondary in any
 * amount, and with three patterns the highest is the secondary (the biopsy's tertiary rule: 3+4 with 5
 * is 3+5, 4+3 with 5 is 4+5); a lower pattern is the secondary only from 5% of the cancer (4 with 3%
 * of 3 is 4+4); one pattern alone is doubled (3+3). Ties go to the higher pattern.
 */
export function gleasonFromAreas(areas: PatternAreas, rule: PatternRule = DEFAULT_PATTERN_RULE): GleasonFromAreas {
  for (const [k, v] of Object.entries(areas))
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`pattern area ${k} must be a finite number >= 0, got ${v}`);
  const cancer = areas.g3 + areas.g4 + areas.g5;
  const tissue = areas.benign + cancer;
  const benign = { primary: 0, secondary: 0, isup: 0, shares: { g3: 0, g4: 0, g5: 0 } };
  if (tissue === 0 || cancer / tissue < rule.minCancerShare) return benign;
  const shares = { g3: areas.g3 / cancer, g4: areas.g4 / cancer, g5: areas.g5 / cancer };
  const byPattern: [number, number][] = [
    [3, shares.g3],
    [4, shares.g4],
    [5, shares.g5],
  ];
  // Most extensive first; ties to the higher pattern.
  const ranked = byPattern.sort((a, b) => b[1] - a[1] || b[0] - a[0]);
  const kept = ranked.filter(([, s]) => s >= rule.minPatternShare);
  const present = kept.length ? kept : ranked.slice(0, 1);
  const [primary] = present[0];
  const others = present.slice(1);
  let secondary = primary;
  const higher = others.filter(([p]) => p > primary);
  if (higher.length) secondary = Math.max(...higher.map(([p]) => p));
  else if (others.length && others[0][1] >= rule.lowerSecondaryShare) secondary = others[0][0];
  return { primary, secondary, isup: isupFromGleason(primary, secondary), shares };
}
