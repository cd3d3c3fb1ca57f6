import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { log } from '../../core/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { createProgress } from '../progress.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';

export function auditCommand(y: Argv): Argv {
  return y.command(
    'audit',
    describeCommand('audit'),
    (c) =>
      trackingFlags(engineFlags(c))
        .option('model', { type: 'string', demandOption: true })
        .option('site-data', { type: 'string', demandOption: true, describe: "tile dataset of the new site's slides (labels optional)" })
        .option('train-data', { type: 'string', describe: "the model's training dataset (default: the one its gradelab.json names)" })
        .option('out', { type: 'string', demandOption: true })
        .option('max-tiles', { type: 'number', default: 1500, describe: 'tiles sampled for the representation and stain statistics' })
        .option('resamples', { type: 'number', default: 500 })
        .option('seed', { type: 'number', default: 1 }),
    async (argv) => {
      const { auditModel } = await import('../../workflows/audit.ts');
      const audit = await trackedRun(
        {
          kind: 'audit',
          name: `audit ${basename(resolve(argv.model))} at ${basename(resolve(argv['site-data']))}`,
          modelDir: argv.model,
          trackingDir: argv['tracking-dir'],
          track: argv.track,
          params: { site: argv['site-data'], training: argv['train-data'] },
        },
        async () => {
          const result = await auditModel(argv.model, argv['site-data'], argv.out, {
            trainData: argv['train-data'],
            maxTiles: argv['max-tiles'],
            resamples: argv.resamples,
            seed: argv.seed,
            engine: engineOptions(argv),
            progress: createProgress,
          });
          return {
            result,
            metrics: {
              'audit/representation_shift': result.representationShift.value.value,
              'audit/shift_ratio': result.representationShift.ratio,
              'audit/ood_flag_rate': result.oodFlagRate?.value,
              'audit/qwk': result.performance?.qwk.value,
              'audit/slides': result.site.slides,
            },
            artifacts: [join(argv.out, 'audit.json'), join(argv.out, 'summary.md')],
          };
        },
      );
      log.info(`audit of ${audit.site.slides} slides: ${join(argv.out, 'summary.md')}`);
      process.stdout.write(`${audit.findings.map((f) => `- ${f}`).join('\n')}\n`);
    },
  );
}
