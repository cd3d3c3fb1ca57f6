import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { InputError, modelFile, readModelMeta, requirePixelModel, sha256File, writeFileAtomic } from '../../core/index.ts';
import { contractOf } from '../../onnx/index.ts';

export function exportCommand(y: Argv): Argv {
  return y.command(
    'export',
    describeCommand('export'),
    (c) =>
      c
        .option('model', { type: 'string', demandOption: true, describe: 'model directory (gradelab train)' })
        .option('out', { type: 'string', describe: 'ONNX file (default: MODEL/model.onnx)' })
        .option('opset', { type: 'number', describe: 'ONNX opset (11-21; default 17)' }),
    async (argv) => {
      const meta = readModelMeta(argv.model);
      requirePixelModel(argv.model, meta, 'an ONNX export');
      if (meta.encoder)
        throw new InputError(
          `${argv.model}: a head on a frozen encoder is exported when it is trained (its model.onnx holds the encoder); retrain to rewrite it`,
        );
      const out = argv.out ?? modelFile(argv.model, 'onnx');
      // TensorFlow.js loads only here: reading the LayersModel needs it, running the ONNX file does not.
      const { exportOnnx, loadLayersModel, ONNX_OPSETS } = await import('../../train/index.ts');
      if (argv.opset !== undefined && !(Number.isInteger(argv.opset) && argv.opset >= ONNX_OPSETS.min && argv.opset <= ONNX_OPSETS.max))
        throw new InputError(`--opset must be an integer from ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max}, got ${argv.opset}`);
      const weights = await sha256File(modelFile(argv.model, 'weights')).catch(() => {
        throw new InputError(`${argv.model}: no weights.bin to export`);
      });
      const model = await loadLayersModel(argv.model);
      try {
        const bytes = exportOnnx(model, contractOf({ ...meta, weightsSha256: meta.weightsSha256 ?? weights }), { opset: argv.opset });
        await writeFileAtomic(out, bytes);
        process.stdout.write(
          `${out}: ${(bytes.length / 1024).toFixed(0)} KB, opset ${argv.opset ?? ONNX_OPSETS.default}, SHA-256 ${await sha256File(out)}\n`,
        );
      } finally {
        model.dispose();
      }
    },
  );
}
