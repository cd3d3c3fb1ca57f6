import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, log } from '../../core/index.ts';
import { loadSplit, openDatasetForModel, tilesOfPartition } from '../../data/index.ts';
import { classIndex, poolSlides, predictTiles, quadraticWeightedKappa } from '../../eval/index.ts';
import { openModel } from '../../engine/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { AttentionMil, bagsOf, saveMil, selectBackend } from '../../train/index.ts';

export function milCommand(y: Argv): Argv {
  return y.command('mil', describeCommand('mil'), (s) =>
    s
      .command(
        'fit',
        "Train the attention-MIL head on a model's frozen tile features; `predict`/`eval --pooling attention` use it",
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('data', { type: 'string', demandOption: true })
            .option('fold', { type: 'number', default: 0 })
            .option('epochs', { type: 'number', default: 40 })
            .option('seed', { type: 'number', default: 1 }),
        async (argv) => {
          if (!Number.isInteger(argv.epochs) || argv.epochs < 1)
            throw new ConfigError(`--epochs must be a positive integer, got ${argv.epochs}`);
          const ds = await openDatasetForModel(argv.data, argv.model);
          const model = await openModel(argv.model, engineOptions(argv));
          const split = await loadSplit(argv.data);
          const graded = (t: { anomaly: string; grade?: number }) => !t.anomaly && t.grade !== undefined;
          const train = tilesOfPartition(ds, split, 'train', argv.fold).filter(graded);
          const val = tilesOfPartition(ds, split, 'val', argv.fold).filter(graded);
          const classes = model.meta.classes;
          const label = (g: number | undefined) => classIndex(g, classes);
          const tp = await predictTiles(model, ds, train, { keepFeatures: true });
          const vp = await predictTiles(model, ds, val, { keepFeatures: true });
          await model.dispose();
          // The MIL head trains on TensorFlow.js (a small model on the main thread), whatever ran the backbone.
          await selectBackend(argv.backend);
          const mil = new AttentionMil(tp.featureDim, classes.length, 32, argv.seed);
          mil.fit(bagsOf(train, tp.features!, tp.featureDim, label), {
            epochs: argv.epochs,
            seed: argv.seed,
            onEpoch: (e, loss) => (e + 1) % 10 === 0 && log.info(`epoch ${e + 1}: loss ${loss.toFixed(3)}`),
          });
          const valBags = bagsOf(val, vp.features!, vp.featureDim, label);
          const att = valBags.map((b) => mil.predict(b).probs).map((p) => p.indexOf(Math.max(...p)));
          const mean = poolSlides(vp, classes, 'mean');
          const y = valBags.map((b) => b.label!);
          const meanBySlide = new Map(mean.map((r) => [r.slideId, r.pred]));
          await saveMil(argv.model, mil, argv.epochs, argv.seed);
          process.stdout.write(
            `validation QWK on ${valBags.length} slides: attention ${quadraticWeightedKappa(y, att, classes.length).toFixed(3)}, mean pooling ${quadraticWeightedKappa(
              y,
              valBags.map((b) => meanBySlide.get(b.slideId)!),
              classes.length,
            ).toFixed(3)}; saved ${argv.model}/mil.json\n`,
          );
        },
      )
      .demandCommand(1, 'name a mil subcommand: fit'),
  );
}
