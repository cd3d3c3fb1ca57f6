import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildTileDataset,
  exportIndex,
  readDatasetTile,
  readManifest,
  TileLoader,
  TileReader,
  type TileDataset,
  type TileStore,
} from '../src/data/index.ts';
import { generateSynthetic } from '../src/synth/index.ts';
import { cached, exists, fmt, hasPython, header } from './common.ts';

const STORES: TileStore[] = ['jpeg', 'raw', 'coords'];
const TILING = { tileSize: 256, mpp: 0.5, stride: 256, minTissue: 0.5 };

/** Seconds of an async step. */
async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

/** Every tile read once, in table order, 8 at a time: what an embedding pass reads before its encoder. */
async function readAll(ds: TileDataset): Promise<void> {
  const reader = new TileReader();
  try {
    for (let i = 0; i < ds.tiles.length; i += 8) await Promise.all(ds.tiles.slice(i, i + 8).map((t) => readDatasetTile(ds, t, reader)));
  } finally {
    await reader.close();
  }
}

/** One loader epoch (decode, no augmentation) on 2 worker threads: the data side of a training epoch. */
async function epoch(ds: TileDataset): Promise<void> {
  const loader = new TileLoader(ds, ds.tiles, { batchSize: 32, seed: 1, workers: 2 });
  for await (const _ of loader.epoch(0));
  await loader.close();
}

/** OpenSlide reading the same regions (read_region at the tile's level, resized where the tiling resamples). */
function openSlideTilesPerSecond(csv: string, datasetDir: string, tileSize: number): number | undefined {
  if (!hasPython('openslide')) return undefined;
  const script = `
import csv, sys, time, openslide
rows = list(csv.DictReader(open(sys.argv[1])))
slides = {}
t0 = time.perf_counter()
for r in rows:
    s = slides.get(r['slide_path']) or slides.setdefault(r['slide_path'], openslide.OpenSlide(sys.argv[2] + '/' + r['slide_path']))
    lvl = int(r['level']); size = int(r['read_size'])
    img = s.read_region((int(r['x']), int(r['y'])), lvl, (size, size)).convert('RGB')
    if size != ${tileSize}: img = img.resize((${tileSize}, ${tileSize}), 1)
print(len(rows) / (time.perf_counter() - t0))`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, csv, datasetDir], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/**
 * npm run bench -- stores: the same slides tiled into each store (256 px at 0.5 um/px): tiling time and
 * tiles/s, disk, one loader epoch on 2 worker threads, and one read of every tile (an embedding pass's
 * reads), with OpenSlide reading the coordinates store's regions in the same run.
 */
export async function benchStores(): Promise<void> {
  header('tile stores on the same 6 slides (4096 x 4096, 256 px at 0.5 um/px): jpeg and raw shards vs coordinates only');
  const slides = cached('stores-slides');
  if (!exists(join(slides, 'manifest.csv')))
    await generateSynthetic({ task: 'prostate', slides: 6, out: slides, size: 4096, sites: 2, seed: 11 });
  const manifest = readManifest(join(slides, 'manifest.csv'));
  process.stdout.write('| store | tiling | disk | loader epoch (2 workers) | read every tile once |\n|---|---|---|---|---|\n');
  let coordsRead = 0;
  for (const store of STORES) {
    const out = cached(`stores-${store}`);
    rmSync(out, { recursive: true, force: true });
    let ds!: TileDataset;
    const tiling = await seconds(async () => (ds = await buildTileDataset(manifest, { ...TILING, out, encoding: store })));
    const n = ds.tiles.length;
    const disk = Number(execFileSync('du', ['-sbL', out], { encoding: 'utf8' }).split('\t')[0]);
    const loader = await seconds(() => epoch(ds));
    const read = await seconds(() => readAll(ds));
    if (store === 'coords') coordsRead = n / read;
    process.stdout.write(
      `| ${store} | ${fmt(tiling, 1)} s (${fmt(n / tiling, 0)} tiles/s, ${n} tiles) | ${fmt(disk / 1e6, 1)} MB | ${fmt(loader, 1)} s (${fmt(n / loader, 0)} tiles/s) | ${fmt(read, 1)} s (${fmt(n / read, 0)} tiles/s) |\n`,
    );
  }
  const csv = cached('stores-coords.csv');
  await exportIndex(join(cached('stores-coords'), 'tiles.parquet'), csv, 'csv');
  const reference = openSlideTilesPerSecond(csv, cached('stores-coords'), TILING.tileSize);
  process.stdout.write(
    reference
      ? `OpenSlide (python3-openslide) reading the same regions, one thread: ${fmt(reference, 0)} tiles/s; gradelab's coordinates store ${fmt(coordsRead, 0)} tiles/s (${fmt(coordsRead / reference, 2)}x)\n`
      : '(install python3-openslide for the OpenSlide reference)\n',
  );
}
