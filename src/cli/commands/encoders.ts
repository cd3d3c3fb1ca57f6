import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ENCODERS } from '../../core/index.ts';
import { printJson, printTable } from '../output.ts';

export function encodersCommand(y: Argv): Argv {
  return y.command('encoders', describeCommand('encoders'), (s) =>
    s
      .command(
        'list',
        'The known pathology encoders: input, normalisation, resolution, embedding width and output, licence, source',
        (c) => c.option('json', { type: 'boolean', default: false }),
        (argv) => {
          if (argv.json) return printJson(ENCODERS);
          printTable(
            ENCODERS.map((e) => [
              e.name,
              e.architecture,
              `${e.inputSize}`,
              `${e.mpp} (${e.tileSize} px)`,
              `${e.dim}`,
              e.output,
              `${e.licence}${e.gated ? ', gated' : ''}`,
            ]),
            ['name', 'architecture', 'input', 'um/px (tile)', 'dim', 'embedding', 'licence'],
          );
          process.stdout.write(
            'Use one: export it with docs/export-encoder-to-onnx.py where the weights are, then model.backbone: {registry: NAME, onnx: PATH}.\n',
          );
        },
      )
      .demandCommand(1, 'name an encoders subcommand: list'),
  );
}
