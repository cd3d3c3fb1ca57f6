import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import {
  ConfigError,
  encoderSpecSchema,
  InputError,
  encoderEntry,
  readModelMeta,
  registryEncoderSpec,
  requirePixelModel,
  zodProblem,
  type EncoderSpec,
} from '../../core/index.ts';
import { loadSplit, openTileDataset, tilesOfPartition } from '../../data/index.ts';
import { checkRegistryEncoder } from '../../engine/index.ts';
import { extractEmbeddings } from '../../workflows/embeddings.ts';
import { createProgress } from '../progress.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { parseShard, tilesOfShard } from '../../data/index.ts';

/** The encoder from --model (a head on a frozen encoder), --registry NAME with --backbone, or --backbone and its flags. */
function encoderOf(argv: {
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

export function featuresCommand(y: Argv): Argv {
  return y.command(
    'features',
    describeCommand('features'),
    (c) =>
      engineFlags(c)
        .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
        .option('model', { type: 'string', describe: 'a model directory whose head sits on a frozen encoder: that encoder' })
        .option('backbone', { type: 'string', describe: 'an encoder .onnx file (input [N,3,H,W] or [N,H,W,3], output [N,d])' })
        .option('registry', { type: 'string', describe: 'with --backbone: the known encoder it exports (gradelab encoders list)' })
        .option('input-size', { type: 'number', describe: 'pixels the encoder takes (with --backbone)' })
        .option('mean', { type: 'number', array: true, describe: 'per-channel mean on RGB in [0,1] (default ImageNet: 0.485 0.456 0.406)' })
        .option('std', { type: 'number', array: true, describe: 'per-channel std (default ImageNet: 0.229 0.224 0.225)' })
        .option('mpp', { type: 'number', describe: 'microns per pixel the encoder was trained at (default 0.5)' })
        .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'all' as const })
        .option('fold', { type: 'number', default: 0 })
        .option('dtype', {
          choices: ['float32', 'float16'] as const,
          describe: 'stored precision: float32 (default for a new cache) or float16 (half the disk)',
        })
        .option('shard', {
          type: 'string',
          describe: 'embed the I-th of N shares of the slides: I/N (shards write disjoint files into one cache)',
        }),
    async (argv) => {
      const spec = encoderOf(argv);
      if (argv.registry) await checkRegistryEncoder(spec, encoderEntry(argv.registry));
      const shard = parseShard(argv.shard);
      const ds = await openTileDataset(argv.data);
      const partition = argv.split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(argv.data), argv.split, argv.fold);
      const tiles = tilesOfShard(partition, shard);
      if (!tiles.length)
        throw new ConfigError(
          `${argv.data}: no tiles to embed in ${argv.split === 'all' ? 'the dataset' : `the ${argv.split} partition`}${shard ? ` for shard ${shard.index}/${shard.count}` : ''}`,
        );
      const t0 = performance.now();
      const { cache, computed, engine } = await extractEmbeddings(ds, spec, {
        tiles,
        dtype: argv.dtype,
        engine: engineOptions(argv),
        progress: createProgress,
      });
      const secs = (performance.now() - t0) / 1000;
      const done = cache.slides().filter((s) => cache.has(s)).length;
      process.stdout.write(
        `${computed} slides embedded (${cache.dim} features, ${cache.index.dtype}, ${engine}, ${secs.toFixed(1)} s); cache ${cache.dir} holds ${done} of ${cache.slides().length} slides\n`,
      );
    },
  );
}
