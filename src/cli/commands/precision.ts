import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { ConfigError } from '../../core/index.ts';
import { fmtEstimate } from '../../eval/index.ts';
import { createProgress } from '../progress.ts';

export function precisionCommand(y: Argv): Argv {
  return y.command(
    'precision',
    describeCommand('precision'),
    (c) =>
      engineFlags(c)
        .option('model', { type: 'string', demandOption: true })
        .option('data', { type: 'string', demandOption: true })
        .option('out', { type: 'string', demandOption: true })
        .option('rescans', { type: 'number', describe: 'repeatability: rescans through --scanner, each with fresh acquisition noise' })
        .option('scanner', { type: 'string', describe: 'with --rescans: a shipped scanner profile or a profile YAML' })
        .option('scanners', { type: 'string', describe: 'reproducibility: comma-separated profiles, one scan through each' })
        .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const })
        .option('fold', { type: 'number', default: 0 })
        .option('tiles-per-slide', { type: 'number', describe: 'tiles per slide under each acquisition, spread over it (default all)' })
        .option('resamples', { type: 'number', default: 1000 })
        .option('seed', { type: 'number', default: 1 }),
    async (argv) => {
      if (!Number.isInteger(argv.resamples) || argv.resamples < 100)
        throw new ConfigError(`--resamples must be an integer of at least 100, got ${argv.resamples}`);
      const { precisionStudy } = await import('../../workflows/precision.ts');
      const r = await precisionStudy(argv.model, argv.data, argv.out, {
        rescans: argv.rescans,
        scanner: argv.scanner,
        scanners: argv.scanners?.split(',').map((s) => s.trim()),
        split: argv.split,
        fold: argv.fold,
        tilesPerSlide: argv['tiles-per-slide'],
        resamples: argv.resamples,
        seed: argv.seed,
        engine: engineOptions(argv),
        progress: createProgress,
      });
      process.stdout.write(
        `${r.kind} over ${r.acquisitions.length} acquisitions of ${r.slides} slides: identical ${fmtEstimate(r.identical)}, pairwise kappa ${fmtEstimate(r.pairwiseKappa)}, mean |grade difference| ${fmtEstimate(r.meanAbsoluteDifference)}; ${argv.out}/precision.md\n`,
      );
    },
  );
}
