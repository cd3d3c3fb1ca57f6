import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { fmtEstimate, parseExclusions } from '../../eval/index.ts';
import { engineOptions } from '../engineOptions.ts';
import { EXCLUDE_OPTION } from '../options.ts';
import { predictionFlags } from '../predictOptions.ts';
import { createProgress } from '../progress.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';

export function evalCommand(y: Argv): Argv {
  return y.command(
    'eval',
    describeCommand('eval'),
    (c) =>
      trackingFlags(predictionFlags(c))
        .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
        .option('resamples', { type: 'number', default: 1000 })
        .option('seed', { type: 'number', default: 1 })
        .option('exclude', EXCLUDE_OPTION),
    async (argv) => {
      const exclude = parseExclusions(argv.exclude);
      const { evaluateModel } = await import('../../workflows/predict.ts');
      const report = await trackedRun(
        {
          kind: 'eval',
          name: `eval ${basename(resolve(argv.model))} on ${basename(resolve(argv.data))}`,
          modelDir: argv.model,
          trackingDir: argv['tracking-dir'],
          track: argv.track,
          params: { data: argv.data, split: argv.split, fold: argv.fold, pooling: argv.pooling, exclude: exclude.join(',') || 'none' },
        },
        async () => {
          const r = await evaluateModel(argv.model, argv.data, argv.out, {
            split: argv.split,
            fold: argv.fold,
            pooling: argv.pooling,
            resample: argv.resample,
            engine: engineOptions(argv),
            resamples: argv.resamples,
            seed: argv.seed,
            exclude,
            progress: createProgress,
          });
          const m = r.metrics;
          return {
            result: r,
            metrics: { qwk: m.qwk.value, accuracy: m.accuracy.value, ece: m.ece.value, slides: r.n, patients: r.patients },
            artifacts: ['metrics.json', 'metrics.md', 'predictions.csv'].map((f) => join(argv.out, f)),
          };
        },
      );
      process.stdout.write(
        `${argv.split}: QWK ${fmtEstimate(report.metrics.qwk)}, accuracy ${fmtEstimate(report.metrics.accuracy)} on ${report.n} slides (${report.patients} patients); ${resolve(argv.out)}\n`,
      );
    },
  );
}
