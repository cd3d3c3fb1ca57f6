import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { modelFile } from '../../core/index.ts';
import { DEFAULT_DETECTORS, QUALITY_DETECTORS } from '../../ood/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { printTable } from '../output.ts';
import { createProgress } from '../progress.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';

export function oodCommand(y: Argv): Argv {
  return y.command('ood', describeCommand('ood'), (s) =>
    s
      .command(
        'fit',
        'Fit detectors on in-distribution training tiles, calibrate thresholds on validation tiles, save them in the model directory',
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('data', { type: 'string', demandOption: true, describe: 'the in-distribution tile dataset (with its split)' })
            .option('method', {
              type: 'string',
              array: true,
              describe: `detectors (default: all): ${[...DEFAULT_DETECTORS, ...QUALITY_DETECTORS].join(', ')}`,
            })
            .option('fold', { type: 'number', default: 0 })
            .option('accept', { type: 'number', default: 0.95, describe: 'share of in-distribution validation tiles to accept' })
            .option('max-tiles', { type: 'number', default: 4000, describe: 'training tiles used (seeded sample)' })
            .option('primary', {
              type: 'string',
              describe: 'the detector predict, robustness and audit report (default: qc-all when fitted, else the first)',
            }),
        async (argv) => {
          const { fitOod } = await import('../../workflows/ood.ts');
          const r = await fitOod(argv.model, argv.data, {
            methods: argv.method,
            fold: argv.fold,
            accept: argv.accept,
            maxTiles: argv['max-tiles'],
            primary: argv.primary,
            engine: engineOptions(argv),
            progress: createProgress,
          });
          process.stdout.write(
            `fitted ${r.methods.length} detectors (primary ${r.primary}) on ${r.trainTiles} tiles (d = ${r.featureDim}), thresholds accept ${(argv.accept * 100).toFixed(0)}% of ${r.valTiles} validation tiles; saved in ${modelFile(argv.model, 'ood')}\n`,
          );
        },
      )
      .command(
        'eval',
        'AUROC, FPR@95TPR, AUPR-In/Out per detector, per anomaly class, near and far, tile (mask truth) and slide level, with CIs',
        (c) =>
          trackingFlags(engineFlags(c))
            .option('model', { type: 'string', demandOption: true })
            .option('id', { type: 'string', demandOption: true, describe: 'in-distribution dataset (its test partition)' })
            .option('ood', {
              type: 'string',
              demandOption: true,
              describe: 'dataset whose anomalous tiles (or all, if none is marked) are OOD',
            })
            .option('out', { type: 'string', demandOption: true })
            .option('id-split', {
              choices: ['train', 'val', 'test', 'all'] as const,
              default: 'test' as const,
              describe: 'partition of --id that is in-distribution (all: a held-out test set)',
            })
            .option('fold', { type: 'number', default: 0 })
            .option('tile-threshold', {
              type: 'number',
              default: 0.5,
              describe: 'a tile is OOD when its label mask marks at least this share anomalous',
            })
            .option('resamples', { type: 'number', default: 500 })
            .option('seed', { type: 'number', default: 1 }),
        async (argv) => {
          const { evaluateOod } = await import('../../workflows/ood.ts');
          const r = await trackedRun(
            {
              kind: 'ood eval',
              name: `ood eval ${basename(resolve(argv.model))}`,
              modelDir: argv.model,
              trackingDir: argv['tracking-dir'],
              track: argv.track,
              params: { id: argv.id, ood: argv.ood, 'id-split': argv['id-split'] },
            },
            async () => {
              const result = await evaluateOod(argv.model, argv.id, argv.ood, argv.out, {
                idSplit: argv['id-split'],
                fold: argv.fold,
                tileThreshold: argv['tile-threshold'],
                resamples: argv.resamples,
                seed: argv.seed,
                engine: engineOptions(argv),
                progress: createProgress,
              });
              const primary = result.study.detectors[result.primary];
              return {
                result,
                metrics: {
                  'ood/slide_auroc': primary?.all.slide.auroc.value,
                  'ood/tile_auroc': primary?.all.tile?.auroc.value,
                  'ood/near_slide_auroc': primary?.groups.near?.slide.auroc.value,
                  'ood/far_slide_auroc': primary?.groups.far?.slide.auroc.value,
                },
                artifacts: [join(argv.out, 'ood.json'), join(argv.out, 'ood.md')],
              };
            },
          );
          const [head, ...rows] = r.table;
          printTable(rows, head);
        },
      )
      .demandCommand(1, 'name an ood subcommand: fit or eval'),
  );
}
