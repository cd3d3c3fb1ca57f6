import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, log, readModelMeta } from '../../core/index.ts';
import { openDatasetForModel } from '../../data/index.ts';
import { openModel } from '../../engine/index.ts';
import { auditSite, writeSiteAudit } from '../../eval/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { createProgress } from '../progress.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';

export function auditCommand(y: Argv): Argv {
  return y.command(
    'audit',
    "Audit a model on a new hospital's slides: representation shift, OOD rate, stain statistics, grade distribution, performance if labelled, and what stain normalisation would change; every claim with a 95% CI",
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
      const meta = readModelMeta(argv.model);
      const trainData = argv['train-data'] ?? (meta.dataset && join(argv.model, meta.dataset));
      if (!trainData) throw new ConfigError('--train-data is needed (the model records no training dataset)');
      if (!Number.isInteger(argv['max-tiles']) || argv['max-tiles'] < 2) throw new ConfigError('--max-tiles must be an integer >= 2');
      const site = await openDatasetForModel(argv['site-data'], argv.model);
      const training = await openDatasetForModel(trainData, argv.model);
      if (!site.tiles.some((t) => !t.anomaly)) throw new ConfigError(`${argv['site-data']}: no tiles to audit`);
      const audit = await trackedRun(
        {
          kind: 'audit',
          name: `audit ${basename(resolve(argv.model))} at ${basename(resolve(argv['site-data']))}`,
          modelDir: argv.model,
          trackingDir: argv['tracking-dir'],
          track: argv.track,
          params: { site: argv['site-data'], training: trainData },
        },
        async () => {
          const model = await openModel(argv.model, engineOptions(argv));
          const progress = createProgress('tiles');
          let result;
          let last = 0;
          try {
            progress.start(0, 'audit');
            result = await auditSite(model, argv.model, site, training, {
              resamples: argv.resamples,
              seed: argv.seed,
              maxTiles: argv['max-tiles'],
              onTiles: (done, total) => {
                progress.setTotal(total);
                progress.increment(done - last);
                last = done;
              },
            });
          } finally {
            progress.stop();
            await model.dispose();
          }
          await writeSiteAudit(argv.out, result, { model: argv.model, site: argv['site-data'], training: trainData });
          log.info(`audit of ${result.site.slides} slides: ${join(argv.out, 'summary.md')}`);
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
      process.stdout.write(`${audit.findings.map((f) => `- ${f}`).join('\n')}\n`);
    },
  );
}
