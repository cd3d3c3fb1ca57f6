import type { Argv } from 'yargs';
import { engineFlags } from './engineOptions.ts';

/** --model, --data, --split, --fold, --resample, --pooling and the engine flags: what predict and eval share. */
export function predictionFlags<T>(c: Argv<T>) {
  return engineFlags(c)
    .option('model', { type: 'string', demandOption: true, describe: 'model directory (gradelab train)' })
    .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
    .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const })
    .option('fold', { type: 'number', default: 0 })
    .option('resample', {
      type: 'boolean',
      default: false,
      describe: "accept tiles of another size that cover the model's field of view (tile size x mpp); they are resized",
    })
    .option('pooling', {
      choices: ['mean', 'topk', 'attention'] as const,
      default: 'mean' as const,
      describe: 'tile-to-slide pooling (attention: the attention-MIL head of the model directory, made by gradelab mil fit)',
    });
}
