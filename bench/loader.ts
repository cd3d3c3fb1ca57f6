import { rmSync, writeFileSync } from 'node:fs';
import { buildTileDataset, openTileDataset, readManifest, TileLoader } from '../src/data/index.ts';
import { cached, exists, fmt, header } from './common.ts';
import { writeBenchSlide } from './slideContent.ts';

/** Loader throughput: batches of 32 256px tiles (JPEG shards) per second, by worker count. */
export async function benchLoader(): Promise<void> {
  header('Tile loader: batches of 32 x 256x256 from JPEG shards');
  const slidePath = cached('regions-6144.tiff');
  if (!exists(slidePath)) await writeBenchSlide(slidePath, 6144, 4, 0.5);
  const dir = cached('loader-ds');
  if (!exists(`${dir}/tiles.csv`)) {
    rmSync(dir, { recursive: true, force: true });
    const manifest = cached('loader.csv');
    writeFileSync(manifest, `path,isup_grade\n${slidePath},2\n`);
    await buildTileDataset(readManifest(manifest), { out: dir, tileSize: 256, mpp: 0.5, minTissue: 0.1, stride: 128 });
  }
  const ds = await openTileDataset(dir);
  for (const workers of [0, 1, 2]) {
    const loader = new TileLoader(ds, ds.tiles, { batchSize: 32, seed: 1, workers, dropLast: true });
    // One warm-up epoch starts the threads and fills the page cache.
    for await (const _ of loader.epoch(0)) break;
    const t0 = performance.now();
    let n = 0;
    for await (const _ of loader.epoch(1)) n++;
    const secs = (performance.now() - t0) / 1000;
    process.stdout.write(`${workers} worker thread${workers === 1 ? '' : 's'}${workers === 0 ? ' (main thread)' : ''}: ${fmt(n / secs)} batches/s = ${fmt((n * 32) / secs, 0)} tiles/s over ${n} batches\n`);
    await loader.close();
  }
  process.stdout.write('(no augmentation yet: the standard pipeline arrives with the augmentation library; model step time with the training engine)\n');
}
