// One measured step of the cohort benchmark, in its own process so its peak RSS is its own:
//   node bin/run-ts.mjs bench/cohortChild.ts query|stream|legacy DIR
// Prints one JSON line: seconds, rows, and what the step reports.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { loadSplit, openTileDataset, openTileIndex, partitionOf, patientsOfDataset, TileLoader } from '../src/data/index.ts';

const [step, dir, streamTiles = '100000'] = process.argv.slice(2);
const t0 = performance.now();
const done = (extra: Record<string, unknown>) =>
  process.stdout.write(
    `${JSON.stringify({ seconds: (performance.now() - t0) / 1000, rssMB: process.resourceUsage().maxRSS / 1024, ...extra })}\n`,
  );

if (step === 'query') {
  // The test fold of one site: patients of fold 0 at site "radboud", pushed down into DuckDB.
  const ds = await openTileIndex(dir);
  const split = await loadSplit(dir);
  const patients = (await patientsOfDataset(ds)).filter((p) => partitionOf(split, p.patientId, 0) === 'test').map((p) => p.patientId);
  const some = await openTileDataset(dir, { patients, sites: ['radboud'] });
  done({ rows: some.tiles.length });
} else if (step === 'stream') {
  // The first slides' tiles up to the count asked, decoded (JPEG shards) through the loader on 2 worker threads.
  const n = Number(streamTiles);
  const { meta } = await openTileIndex(dir);
  const slides = Math.min(meta.slides, Math.ceil(n / (meta.tiles / meta.slides)) + 1);
  const ds = await openTileDataset(dir, { slides: Array.from({ length: slides }, (_, i) => `s${String(i).padStart(5, '0')}`) });
  const tiles = ds.tiles.slice(0, n);
  const start = performance.now();
  const loader = new TileLoader(ds, tiles, { batchSize: 64, seed: 1, workers: 2 });
  let seen = 0;
  for await (const b of loader.epoch(0)) seen += b.tiles.length;
  await loader.close();
  done({ rows: seen, tilesPerSecond: seen / ((performance.now() - start) / 1000) });
} else if (step === 'legacy') {
  // gradelab 0.1's open: tiles.csv read whole into one string, parsed, then one object per tile.
  try {
    const rows = parse(await readFile(join(dir, 'tiles.csv'), 'utf8')) as string[][];
    const header = rows[0];
    const at = (name: string) => header.indexOf(name);
    const tiles = rows.slice(1).map((r, i) => ({
      index: i,
      slideId: r[at('slide_id')],
      patientId: r[at('patient_id')],
      site: r[at('site')],
      scanner: r[at('scanner')],
      grade: r[at('grade')] === '' ? undefined : Number(r[at('grade')]),
      labels: {},
      anomaly: r[at('anomaly')],
      x: Number(r[at('x')]),
      y: Number(r[at('y')]),
      level: Number(r[at('level')]),
      mpp: Number(r[at('mpp')]),
      tissue: Number(r[at('tissue')]),
      shard: r[at('shard')],
      offset: Number(r[at('offset')]),
      length: Number(r[at('length')]),
    }));
    done({ rows: tiles.length });
  } catch (err) {
    done({ error: (err as Error).message.split('\n')[0] });
  }
} else {
  console.error(`unknown step ${step}`);
  process.exit(2);
}
