import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { ConfigError } from '../../core/index.ts';
import { createProgress } from '../progress.ts';

export function calibrateCommand(y: Argv): Argv {
  return y.command(
    'calibrate',
    describeCommand('calibrate'),
    (c) =>
      engineFlags(c)
        .option('model', { type: 'string', demandOption: true })
        .option('data', { type: 'string', demandOption: true, describe: 'the tile dataset with its split' })
        .option('split', { choices: ['val', 'train'] as const, default: 'val' as const, describe: 'slides the temperature is fitted on' })
        .option('fold', { type: 'number', default: 0 })
        .option('resamples', { type: 'number', default: 1000, describe: 'patient-bootstrap resamples for the ECE intervals' })
        .option('seed', { type: 'number', default: 1 }),
    async (argv) => {
      if (!Number.isInteger(argv.resamples) || argv.resamples < 100)
        throw new ConfigError(`--resamples must be an integer of at least 100, got ${argv.resamples}`);
      const { calibrateModel } = await import('../../workflows/calibrate.ts');
      const r = await calibrateModel(argv.model, argv.data, {
        split: argv.split,
        fold: argv.fold,
        resamples: argv.resamples,
        seed: argv.seed,
        engine: engineOptions(argv),
        progress: createProgress,
      });
      const f = (x: number) => x.toFixed(3);
      process.stdout.write(
        `temperature ${r.temperature.toFixed(3)} on ${r.slides} ${r.split} slides: NLL ${f(r.before.nll)} -> ${f(r.after.nll)}, ECE ${f(r.before.ece)} -> ${f(r.after.ece)} (equal mass ${f(r.before.eceEqualMass)} -> ${f(r.after.eceEqualMass)}); applied by every command from now on; figures in ${argv.model}/calibration/\n`,
      );
    },
  );
}
