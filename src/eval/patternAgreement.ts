import { groupBy } from '../core/index.ts';
import { quadraticWeightedKappa } from '../metrics/index.ts';
import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { fmtEstimate } from './metricsFiles.ts';

/** The patterns a pattern model's tiles are compared on, in order (benign < 3 < 4 < 5). */
export const PATTERN_NAMES = ['benign', 'Gleason 3', 'Gleason 4', 'Gleason 5'] as const;

/** A tile with a pattern mask: its pattern by the mask (0-3) and the model's four pattern probabilities. */
export interface PatternTile {
  slideId: string;
  patientId: string;
  truth: number;
  probs: readonly number[];
}

export interface PatternClassAgreement {
  name: string;
  /** Tiles of the pattern by the masks. */
  support: number;
  sensitivity: Estimate;
  /** Tile-level Dice, 2 TP / (2 TP + FP + FN): the overlap of the model's and the masks' regions in tiles. */
  dice: Estimate;
  /** Mean over slides of |the model's share of the slide in the pattern - the masks' share|. */
  areaError: Estimate;
}

/** How well a pattern model's tiles agree with the label masks: what a pathologist's pattern map is checked on. */
export interface PatternAgreement {
  tiles: number;
  slides: number;
  patients: number;
  accuracy: Estimate;
  /** Quadratic-weighted kappa over the ordered patterns (benign, 3, 4, 5). */
  kappa: Estimate;
  classes: PatternClassAgreement[];
  /** Tiles by mask pattern (rows) and predicted pattern (columns). */
  confusion: number[][];
}

const argmax = (p: readonly number[]) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);

/**
 * Tile-level agreement of a pattern model with the masks, every interval a patient bootstrap (a patient's
 * slides and tiles resampled together): accuracy and kappa of the most probable pattern, per pattern
 * sensitivity and Dice, and each slide's pattern areas (mean probabilities) against the masks' shares.
 */
export function patternAgreement(tiles: readonly PatternTile[], options: { resamples: number; seed: number }): PatternAgreement {
  const pred = tiles.map((t) => argmax(t.probs));
  const truth = tiles.map((t) => t.truth);
  const patients = tiles.map((t) => t.patientId);
  const boot = (statistic: (rows: Int32Array) => number) => bootstrapByPatient(patients, statistic, options);
  const confusion = PATTERN_NAMES.map(() => PATTERN_NAMES.map(() => 0));
  tiles.forEach((_, i) => confusion[truth[i]][pred[i]]++);
  const bySlide = [
    ...groupBy(
      tiles,
      (t) => t.slideId,
      (_, i) => i,
    ).values(),
  ];
  const slidePatients = bySlide.map((idx) => tiles[idx[0]].patientId);
  // Each slide's areas: the share of its masked tiles in each pattern, by the masks and by the model.
  const areas = bySlide.map((idx) =>
    PATTERN_NAMES.map((_, c) => {
      let model = 0;
      let mask = 0;
      for (const i of idx) {
        model += tiles[i].probs[c];
        mask += truth[i] === c ? 1 : 0;
      }
      return Math.abs(model - mask) / idx.length;
    }),
  );
  const classes = PATTERN_NAMES.map((name, c) => {
    const count = (rows: Int32Array, keep: (i: number) => boolean) => rows.reduce((a, i) => a + (keep(i) ? 1 : 0), 0);
    return {
      name,
      support: truth.filter((t) => t === c).length,
      sensitivity: boot((rows) => count(rows, (i) => truth[i] === c && pred[i] === c) / count(rows, (i) => truth[i] === c)),
      dice: boot((rows) => {
        const tp = count(rows, (i) => truth[i] === c && pred[i] === c);
        return (2 * tp) / (count(rows, (i) => truth[i] === c) + count(rows, (i) => pred[i] === c));
      }),
      areaError: bootstrapByPatient(slidePatients, (rows) => rows.reduce((a, s) => a + areas[s][c], 0) / rows.length, options),
    };
  });
  return {
    tiles: tiles.length,
    slides: bySlide.length,
    patients: new Set(patients).size,
    accuracy: boot((rows) => rows.reduce((a, i) => a + (truth[i] === pred[i] ? 1 : 0), 0) / rows.length),
    kappa: boot((rows) =>
      quadraticWeightedKappa(
        Array.from(rows, (i) => truth[i]),
        Array.from(rows, (i) => pred[i]),
        PATTERN_NAMES.length,
      ),
    ),
    classes,
    confusion,
  };
}

/** patterns.md: the agreement as tables a reader checks a pattern map against. */
export function patternAgreementMarkdown(a: PatternAgreement, source: string): string {
  const lines = [
    '# Gleason patterns against the label masks',
    '',
    `${source}: ${a.tiles} tiles with pattern masks on ${a.slides} slides of ${a.patients} patients. A tile's pattern by its mask is`,
    "its cancer's most extensive pattern when cancer is at least a tenth of its tissue, benign otherwise; the model's is its",
    'most probable pattern. 95% intervals: patient bootstrap.',
    '',
    '| metric | value (95% CI) |',
    '|---|---|',
    `| tile accuracy | ${fmtEstimate(a.accuracy)} |`,
    `| quadratic-weighted kappa (benign < 3 < 4 < 5) | ${fmtEstimate(a.kappa)} |`,
    '',
    '| pattern | tiles | sensitivity | Dice (tiles) | slide area error |',
    '|---|---|---|---|---|',
    ...a.classes.map(
      (c) => `| ${c.name} | ${c.support} | ${fmtEstimate(c.sensitivity)} | ${fmtEstimate(c.dice)} | ${fmtEstimate(c.areaError)} |`,
    ),
    '',
    'Slide area error: the mean over slides of the difference between the share of the slide the model gives the pattern',
    "(its tiles' mean probability) and the masks' share.",
    '',
    '## Confusion (rows: masks, columns: model)',
    '',
    `| | ${PATTERN_NAMES.join(' | ')} |`,
    `|---|${PATTERN_NAMES.map(() => '---').join('|')}|`,
    ...a.confusion.map((row, r) => `| ${PATTERN_NAMES[r]} | ${row.join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}
