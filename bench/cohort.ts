import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildTileDataset,
  INDEX_FILE,
  INDEX_FORMAT,
  isTileDataset,
  openTileDataset,
  queryRows,
  readManifest,
  sqlString,
} from '../src/data/index.ts';
import { generateSynthetic } from '../src/synth/index.ts';
import { cached, exists, fmt, header } from './common.ts';

const BIN = fileURLToPath(new URL('../bin/gradelab.mjs', import.meta.url));
const RUN_TS = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('./cohortChild.ts', import.meta.url));
/** PANDA's biopsies: 10,616 slides (one patient each here), from two sites. */
const SLIDES = 10_616;
const SIZES = [100_000, 1_000_000, 10_000_000];

/** A small real dataset whose tiles the cohort's rows point at, so loading reads and decodes real JPEG shards. */
async function baseDataset(): Promise<string> {
  const dir = cached('cohort-base');
  if (!isTileDataset(dir)) {
    rmSync(dir, { recursive: true, force: true });
    const { manifest } = await generateSynthetic({
      task: 'prostate',
      slides: 4,
      out: cached('cohort-base-slides'),
      size: 1024,
      sites: 1,
      seed: 3,
    });
    await buildTileDataset(readManifest(manifest), { out: dir, tileSize: 128, mpp: 1, stride: 128 });
  }
  return dir;
}

/**
 * A cohort-sized dataset without rendering a pixel: dataset.json, the Parquet index written by DuckDB from
 * a generated table (slides in order, tiles contiguous per slide, grades and sites spread), every row
 * pointing at one of the base dataset's real tiles; and the same table as gradelab 0.1's tiles.csv.
 */
async function cohortDataset(n: number, base: string): Promise<string> {
  const dir = cached(`cohort-${n}`);
  if (isTileDataset(dir)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(base, 'shards'), join(dir, 'shards'));
  const real = (await openTileDataset(base)).tiles;
  const list = (f: (t: (typeof real)[number]) => string | number) =>
    `[${real.map((t) => (typeof f(t) === 'number' ? f(t) : sqlString(String(f(t))))).join(', ')}]`;
  const pick = `(i % ${real.length}) + 1`;
  const select = `SELECT 's' || lpad((i * ${SLIDES} // ${n})::VARCHAR, 5, '0') AS slide_id,
      'p' || lpad((i * ${SLIDES} // ${n})::VARCHAR, 5, '0') AS patient_id,
      CASE WHEN (i * ${SLIDES} // ${n}) % 2 = 0 THEN 'radboud' ELSE 'karolinska' END AS site,
      CASE WHEN (i * ${SLIDES} // ${n}) % 2 = 0 THEN '3dhistech' ELSE 'hamamatsu' END AS scanner,
      (hash(i * ${SLIDES} // ${n}) % 6)::INTEGER AS grade, '' AS anomaly,
      ((i % 40) * 128)::INTEGER AS x, ((i // 40 % 40) * 128)::INTEGER AS y, 0::INTEGER AS level, 1.0::DOUBLE AS mpp, 0.8::DOUBLE AS tissue,
      ${list((t) => t.shard)}[${pick}] AS shard, ${list((t) => t.offset)}[${pick}]::BIGINT AS "offset",
      ${list((t) => t.length)}[${pick}]::INTEGER AS length, NULL::DOUBLE AS anomaly_fraction
    FROM range(${n}) r(i)`;
  await queryRows(
    `COPY (${select}) TO ${sqlString(join(dir, INDEX_FILE))} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {format: ${sqlString(INDEX_FORMAT)}})`,
    dir,
  );
  await queryRows(`COPY (${select}) TO ${sqlString(join(dir, 'tiles.csv'))} (FORMAT csv, HEADER true)`, dir);
  const meta = JSON.parse(readFileSync(join(base, 'dataset.json'), 'utf8'));
  const manifest = relative(dir, join(base, meta.manifest));
  writeFileSync(
    join(dir, 'dataset.json'),
    JSON.stringify({ ...meta, manifest, labelColumns: [], slides: SLIDES, tiles: n, sha256: undefined }, null, 2),
  );
  return dir;
}

interface Measured {
  seconds: number;
  rssMB: number;
  rows?: number;
  tilesPerSecond?: number;
  error?: string;
}

/**
 * Wall time and peak RSS of a command (GNU time). A benchmark child prints a JSON line of its own
 * (seconds and peak RSS measured inside it, without the TypeScript loader's start, and what it counted),
 * which takes precedence.
 */
function measure(args: string[]): Measured {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 28,
  });
  const m = /TIME ([\d.]+) (\d+)/.exec(r.stderr);
  const outside: Measured = { seconds: m ? Number(m[1]) : NaN, rssMB: m ? Number(m[2]) / 1024 : NaN };
  if (r.status !== 0) return { ...outside, error: r.stderr.split('\n')[0] };
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return last.startsWith('{') && args.includes(CHILD) ? { ...outside, ...(JSON.parse(last) as Measured) } : outside;
}

const cell = (m: Measured, what = '') =>
  m.error ? `fails: ${m.error.slice(0, 60)}` : `${fmt(m.seconds, 2)} s, ${fmt(m.rssMB, 0)} MB${what}`;

/**
 * npm run bench -- cohort: PANDA-sized tile indexes (10,616 slides; 10^5, 10^6, 10^7 tiles), each step in
 * its own process for its peak RSS: open + dataset info, split --folds 5, the test fold of one site as a
 * filtered query, streaming tiles through the loader, and gradelab 0.1's CSV open of the same table.
 * Targets: 10^7 tiles open and summarise in under 3 s and 1 GB; split of 10^4 patients under 5 s.
 */
export async function benchCohort(): Promise<void> {
  header(`cohort scale: ${SLIDES.toLocaleString('en-US')} slides, Parquet tile index through DuckDB vs gradelab 0.1's tiles.csv`);
  const stream = process.env.COHORT_STREAM ?? '100000';
  const base = await baseDataset();
  process.stdout.write(
    `| tiles | index on disk | open + dataset info | split --folds 5 | test fold of one site (query) | loader, ${Number(stream).toLocaleString('en-US')} tiles | 0.1: open tiles.csv |\n|---|---|---|---|---|---|---|\n`,
  );
  for (const n of SIZES) {
    const dir = await cohortDataset(n, base);
    const disk = `${fmt(statSync(join(dir, INDEX_FILE)).size / 1e6, 1)} MB (csv ${fmt(statSync(join(dir, 'tiles.csv')).size / 1e6, 0)} MB)`;
    const info = measure([BIN, 'dataset', 'info', dir, '--json']);
    const split = measure([BIN, 'split', dir, '--folds', '5', '--seed', '1']);
    const query = measure([RUN_TS, CHILD, 'query', dir]);
    const streamed = measure([RUN_TS, CHILD, 'stream', dir, stream]);
    const legacy = measure([RUN_TS, CHILD, 'legacy', dir]);
    process.stdout.write(
      `| ${n.toLocaleString('en-US')} | ${disk} | ${cell(info)} | ${cell(split)} | ${cell(query, `, ${query.rows?.toLocaleString('en-US')} rows`)} | ${cell(streamed, `, ${fmt(streamed.tilesPerSecond ?? 0, 0)} tiles/s`)} | ${cell(legacy)} |\n`,
    );
  }
  if (!exists(BIN)) process.stdout.write('(build first: npm run build)\n');
}
