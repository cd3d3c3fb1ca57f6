import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError } from '../../core/index.ts';
import { loadSplit, openTileDataset, tilesOfPartition } from '../../data/index.ts';
import { checkedEncoder, encoderFlags } from '../encoderOptions.ts';
import { extractEmbeddings } from '../../workflows/embeddings.ts';
import { createProgress } from '../progress.ts';
import { claimFlags, staleAfterMs } from '../options.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { parseShard, tilesOfShard } from '../../data/index.ts';

export function featuresCommand(y: Argv): Argv {
  return y.command(
    'features',
    describeCommand('features'),
    (c) =>
      claimFlags(
        encoderFlags(engineFlags(c)),
        'embed',
        "embed nothing; fail, naming them, while slides are missing from the cache (the array's last job)",
      )
        .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
        .option('model', { type: 'string', describe: 'a model directory whose head sits on a frozen encoder: that encoder' })
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
      const spec = await checkedEncoder(argv);
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
        staleAfterMs: staleAfterMs(argv['stale-after']),
        role: argv['claim-only'] ? 'worker' : argv.finish ? 'finish' : 'all',
      });
      const secs = (performance.now() - t0) / 1000;
      const done = cache.slides().filter((s) => cache.has(s)).length;
      process.stdout.write(
        `${computed} slides embedded (${cache.dim} features, ${cache.index.dtype}, ${engine}, ${secs.toFixed(1)} s); cache ${cache.dir} holds ${done} of ${cache.slides().length} slides\n`,
      );
    },
  );
}
