import type { Argv } from 'yargs';
import {
  ConfigError,
  encoderEntry,
  encoderSpecSchema,
  InputError,
  readModelMeta,
  registryEncoderSpec,
  requirePixelModel,
  zodProblem,
  type EncoderSpec,
} from '../core/index.ts';
import { checkRegistryEncoder } from '../engine/index.ts';

/** The flags that name a frozen encoder by its ONNX file: --backbone with --registry, or with its input size and normalisation. */
export function encoderFlags<T>(c: Argv<T>) {
  return c
    .option('backbone', { type: 'string', describe: 'an encoder .onnx file (input [N,3,H,W] or [N,H,W,3], output [N,d])' })
    .option('registry', { type: 'string', describe: 'with --backbone: the known encoder it exports (gradelab encoders list)' })
    .option('input-size', { type: 'number', describe: 'pixels the encoder takes (with --backbone)' })
    .option('mean', { type: 'number', array: true, describe: 'per-channel mean on RGB in [0,1] (default ImageNet: 0.485 0.456 0.406)' })
    .option('std', { type: 'number', array: true, describe: 'per-channel std (default ImageNet: 0.229 0.224 0.225)' })
    .option('mpp', { type: 'number', describe: 'microns per pixel the encoder was trained at (default 0.5)' });
}

/** The encoder from --model (a head on a frozen encoder), --registry NAME with --backbone, or --backbone and its flags. */
export function encoderOf(argv: {
  model?: string;
  backbone?: string;
  registry?: string;
  'input-size'?: number;
  mean?: number[];
  std?: number[];
  mpp?: number;
}): EncoderSpec {
  if (argv.model && argv.backbone) throw new ConfigError('give --model or --backbone, not both');
  if (argv.model) {
    const meta = readModelMeta(argv.model);
    requirePixelModel(argv.model, meta, '`gradelab features`');
    if (!meta.encoder)
      throw new InputError(
        `${argv.model}: not a head on a frozen encoder (its backbone ${meta.backbone} trains end to end); use --backbone ENCODER.onnx`,
      );
    return meta.encoder;
  }
  if (!argv.backbone)
    throw new ConfigError('give --backbone ENCODER.onnx (with --input-size or --registry NAME), or --model of a head on a frozen encoder');
  if (argv.registry) {
    if (argv['input-size'] !== undefined || argv.mean || argv.std || argv.mpp !== undefined)
      throw new ConfigError('--registry fills in the input size, mean, std and mpp; give those flags without it');
    return registryEncoderSpec(argv.registry, argv.backbone).spec;
  }
  const r = encoderSpecSchema.safeParse({
    onnx: argv.backbone,
    inputSize: argv['input-size'],
    mean: argv.mean,
    std: argv.std,
    mpp: argv.mpp,
  });
  if (!r.success) throw new ConfigError(`--backbone ${argv.backbone}: ${zodProblem(r.error).replace(/^inputSize/, '--input-size')}`);
  return r.data;
}

/** encoderOf, with a registry entry's input and output shapes checked against the ONNX file before any work. */
export async function checkedEncoder(argv: Parameters<typeof encoderOf>[0]): Promise<EncoderSpec> {
  const spec = encoderOf(argv);
  if (argv.registry) await checkRegistryEncoder(spec, encoderEntry(argv.registry));
  return spec;
}
