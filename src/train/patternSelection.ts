import type * as tfl from '@tensorflow/tfjs-layers';
import { gradeClasses, type PatternGrading } from '../core/index.ts';
import { predictTiles, type TileDataset, type TilePredictions, type TileRow } from '../data/index.ts';
import type { TrainConfig } from './config.ts';
import { choosePatternGrading, DEFAULT_PATTERN_GRADING, gradingFromValidation, validationSlides } from './patternRule.ts';
import { tilePatternClass } from './patternTargets.ts';
import { TfjsPredictor } from './predictor.ts';

// How a pattern model is validated and selected during fit(), and its rule chosen at the end.

/**
 * What epochs are selected on: slide QWK, or for a pattern model whose validation tiles have pattern
 * masks, the tiles' QWK against their masks' patterns (hundreds of tiles against a validation set's
 * dozen slides, each graded by a rule chosen on those same slides: measured on the quick demo, slide
 * selection kept a first epoch whose tiles were near chance).
 */
export type SelectOn = 'slides' | 'tiles';

export function selectionOf(config: TrainConfig, valTiles: readonly TileRow[]): SelectOn {
  return config.model.head === 'patterns' && valTiles.some((t) => tilePatternClass(t) !== undefined) ? 'tiles' : 'slides';
}

/** The grading validation would choose for these tile probabilities (quietly: it runs every epoch). */
export function epochGrading(vp: TilePredictions, classes: number[]): PatternGrading {
  const slides = validationSlides(vp, classes);
  return slides.length ? choosePatternGrading(slides) : DEFAULT_PATTERN_GRADING;
}

/** A pattern model's grading, chosen with the kept weights on validation tiles (patternRule.ts). */
export async function gradingOfModel(best: tfl.LayersModel, config: TrainConfig, ds: TileDataset, val: TileRow[]) {
  const classes = gradeClasses(config.task);
  const predictor = new TfjsPredictor(best, { head: 'patterns', classes, inputSize: config.model.inputSize });
  return gradingFromValidation(await predictTiles(predictor, ds, val, { batchSize: 64 }), classes, config.data.fold);
}
