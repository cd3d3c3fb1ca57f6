import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { STANDARD_TRAINING_PIPELINE } from '../src/augment/index.ts';
import { buildTileDataset, isTileDataset, openTileDataset, readManifest, TileLoader } from '../src/data/index.ts';
import { cached, exists, fmt, header } from './common.ts';
import { writeBenchSlide } from './slideContent.ts';

/** Loader throughput: batches of 32 256px tiles (JPEG shards) per second, by worker count. */
export async function benchLoader(): Promise<void> {
  header('Tile loader: batches of 32 x 256x256 from JPEG shards');
  const slidePath = cached('regions-6144.tiff');
  if (!exists(slidePath)) await writeBenchSlide(slidePath, 6144, 4, 0.5);
  const dir = cached('loader-ds');
  if (!isTileDataset(dir)) {
    rmSync(dir, { recursive: true, force: true });
    const manifest = cached('loader.csv');
    writeFileSync(manifest, `path,isup_grade\n${slidePath},2\n`);
    await buildTileDataset(readManifest(manifest), { out: dir, tileSize: 256, mpp: 0.5, minTissue: 0.1, stride: 128 });
  }
  const ds = await openTileDataset(dir);
  const transform = { module: fileURLToPath(new URL('../src/augment/pipeline.ts', import.meta.url)), spec: STANDARD_TRAINING_PIPELINE };
  for (const [workers, augment] of [
    [0, false],
    [0, true],
    [1, true],
    [2, true],
  ] as const) {
    const loader = new TileLoader(ds, ds.tiles, {
      batchSize: 32,
      seed: 1,
      workers,
      dropLast: true,
      transform: augment ? transform : undefined,
    });
    // A whole warm-up epoch: every worker thread compiles its modules (tsx) and the page cache fills.
    for await (const _ of loader.epoch(0));
    const t0 = performance.now();
    let n = 0;
    for await (const _ of loader.epoch(1)) n++;
    const secs = (performance.now() - t0) / 1000;
    process.stdout.write(
      `${augment ? 'decode + standard augmentation' : 'decode only'}, ${workers} worker thread${workers === 1 ? '' : 's'}${workers === 0 ? ' (main thread)' : ''}: ${fmt(n / secs)} batches/s = ${fmt((n * 32) / secs, 0)} tiles/s over ${n} batches\n`,
    );
    await loader.close();
  }
  process.stdout.write('(the model step time to compare with comes with the training engine)\n');
}
