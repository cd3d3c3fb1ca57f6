import { join } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError } from '../../core/index.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';
import { comparePredictions, describeComparison, inferTask, readPredictions, writeComparison } from '../../eval/index.ts';

export function compareCommand(y: Argv): Argv {
  return y.command(
    'compare',
    describeCommand('compare'),
    (c) =>
      trackingFlags(c)
        .option('model', { type: 'string', describe: "the model B's predictions come from: the run is filed under its training run" })
        .option('pred', {
          type: 'string',
          array: true,
          demandOption: true,
          describe:
            'two arms, A then B (B is compared against A): --pred A.csv --pred B.csv, or several training runs of each recipe on the same cases: --pred A1.csv,A2.csv --pred B1.csv,B2.csv',
        })
        .option('name', { type: 'string', array: true, describe: 'names for A and B in the outputs' })
        .option('out', { type: 'string', demandOption: true })
        .option('task', { choices: ['prostate', 'breast'] as const, describe: 'clinical cut-offs (default: from the number of classes)' })
        .option('resamples', { type: 'number', default: 1000 })
        .option('seed', { type: 'number', default: 1 }),
    async (argv) => {
      if (argv.pred.length !== 2) throw new ConfigError(`give exactly two --pred arms (A then B), got ${argv.pred.length}`);
      if (argv.name && argv.name.length !== 2) throw new ConfigError(`--name takes two names (A then B), got ${argv.name.length}`);
      if (!Number.isInteger(argv.resamples) || argv.resamples < 100)
        throw new ConfigError(`--resamples must be an integer of at least 100, got ${argv.resamples}`);
      const [a, b] = argv.pred.map((arm) => arm.split(',').map((path) => readPredictions(path.trim())));
      const nameA = argv.name?.[0] ?? 'A';
      const nameB = argv.name?.[1] ?? 'B';
      const c = await trackedRun(
        {
          kind: 'compare',
          name: `compare ${nameB} vs ${nameA}`,
          modelDir: argv.model,
          trackingDir: argv['tracking-dir'],
          track: argv.track,
          params: { a: argv.pred[0], b: argv.pred[1] },
        },
        async () => {
          const result = comparePredictions(a, b, {
            task: inferTask(a[0].k, argv.task),
            resamples: argv.resamples,
            seed: argv.seed,
            nameA,
            nameB,
          });
          await writeComparison(argv.out, result);
          return {
            result,
            metrics: Object.fromEntries(
              result.metrics.map((m) => [`diff/${m.metric.replace(/[^A-Za-z0-9_./-]+/g, '_')}`, m.difference.value]),
            ),
            artifacts: [join(argv.out, 'compare.json'), join(argv.out, 'compare.md')],
          };
        },
      );
      process.stdout.write(`${describeComparison(c).join('\n')}\n`);
    },
  );
}
