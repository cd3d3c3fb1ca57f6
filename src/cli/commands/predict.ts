import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { log } from '../../core/index.ts';
import { parseShard } from '../../data/index.ts';
import { mergePredictionFiles, writePredictions } from '../../eval/index.ts';
import { engineOptions } from '../engineOptions.ts';
import { predictionFlags } from '../predictOptions.ts';
import { createProgress } from '../progress.ts';

export function predictCommand(y: Argv): Argv {
  return y.command('predict', describeCommand('predict'), (s) =>
    s
      .command(
        '$0',
        'Predict a partition (or a shard of its slides) into a predictions CSV',
        (c) =>
          predictionFlags(c)
            .option('out', { type: 'string', demandOption: true, describe: 'predictions CSV' })
            .option('level', { choices: ['slide', 'tile'] as const, default: 'slide' as const })
            .option('shard', { type: 'string', describe: 'predict the I-th of N shares of the slides: I/N (join with predict merge)' }),
        async (argv) => {
          const { predictDataset } = await import('../../workflows/predict.ts');
          const { rows, k } = await predictDataset(argv.model, argv.data, {
            split: argv.split,
            fold: argv.fold,
            level: argv.level,
            pooling: argv.pooling,
            shard: parseShard(argv.shard),
            resample: argv.resample,
            engine: engineOptions(argv),
            progress: createProgress,
          });
          await writePredictions(argv.out, rows, k);
          log.info(`${rows.length} ${argv.level} predictions -> ${argv.out}`);
        },
      )
      .command(
        'merge <files..>',
        'Join the predictions CSVs of --shard runs into one file',
        (c) =>
          c.positional('files', { type: 'string', array: true, demandOption: true }).option('out', { type: 'string', demandOption: true }),
        async (argv) => {
          const merged = mergePredictionFiles(argv.files as string[]);
          await writePredictions(argv.out, merged.rows, merged.k);
          log.info(`${merged.rows.length} rows from ${(argv.files as string[]).length} files -> ${argv.out}`);
        },
      ),
  );
}
