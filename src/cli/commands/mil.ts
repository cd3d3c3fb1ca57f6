import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';

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
          const { fitMil } = await import('../../workflows/mil.ts');
          const r = await fitMil(argv.model, argv.data, {
            fold: argv.fold,
            epochs: argv.epochs,
            seed: argv.seed,
            engine: engineOptions(argv),
          });
          process.stdout.write(
            `validation QWK on ${r.valSlides} slides: attention ${r.attentionQwk.toFixed(3)}, mean pooling ${r.meanPoolingQwk.toFixed(3)}; saved ${r.path}\n`,
          );
        },
      )
      .demandCommand(1, 'name a mil subcommand: fit'),
  );
}
