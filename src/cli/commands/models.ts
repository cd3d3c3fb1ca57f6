import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { printTable } from '../output.ts';

export function modelsCommand(y: Argv): Argv {
  return y.command('models', describeCommand('models'), (s) =>
    s
      .command(
        'list',
        'Backbones that gradelab train can build',
        () => undefined,
        async () => {
          const { modelRegistry } = await import('../../train/index.ts');
          printTable(
            modelRegistry.values().map(([n, d]) => [n, d.description]),
            ['model', 'architecture'],
          );
          process.stdout.write(
            '\nheads: softmax (classification), ordinal (CORAL cumulative link), multitask (breast: grade + tubules, pleomorphism, mitoses)\noptions: model.width (channel multiplier), model.inputSize (pixels), model.init (fine-tune from a model directory)\nfrozen encoders: model.backbone: {onnx: PATH, inputSize, mean, std, mpp} trains a head on cached embeddings of an ONNX encoder (a pathology foundation model)\n',
          );
        },
      )
      .demandCommand(1),
  );
}
