import { cpSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isUserError, log } from '../../src/core/index.ts';
import {
  buildTileDataset,
  exportIndex,
  INDEX_FILE,
  openTileDataset,
  openTileIndex,
  patientsOf,
  patientsOfDataset,
  queryRows,
  readManifest,
  sqlString,
  summariseDataset,
  type TileDataset,
} from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
let ds: TileDataset;
let manifest: string;

beforeAll(async () => {
  ({ manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 9,
    out: join(dir, 'slides'),
    size: 512,
    sites: 3,
    anomalies: 0.2,
    seed: 7,
  }));
  ds = await buildTileDataset(readManifest(manifest), { out: join(dir, 'ds'), tileSize: 64, mpp: 1, stride: 64 });
}, 120_000);

/**
 * A copy of the dataset as gradelab 0.1 left it: dataset.json version 1 without the identity, no index,
 * and tiles.csv as 0.1 assembled it (the per-slide rows in manifest order under one header).
 */
function asVersion1(to: string): string {
  cpSync(join(dir, 'ds'), to, { recursive: true });
  const parts = readManifest(manifest).records.flatMap((r) => {
    const p = join(to, 'rows', `${r.slideId}.csv`);
    return existsSync(p) ? [readFileSync(p, 'utf8')] : [];
  });
  const header = parts[0].slice(0, parts[0].indexOf('\n') + 1);
  writeFileSync(join(to, 'tiles.csv'), header + parts.map((p) => p.slice(header.length)).join(''));
  const meta = JSON.parse(readFileSync(join(to, 'dataset.json'), 'utf8'));
  writeFileSync(join(to, 'dataset.json'), JSON.stringify({ ...meta, version: 1, sha256: undefined }));
  rmSync(join(to, INDEX_FILE));
  return to;
}

describe('tile index (Parquet through DuckDB)', () => {
  it('counts per site, scanner, grade and anomaly as a count over the tiles in memory does', async () => {
    const summary = await summariseDataset(await openTileIndex(ds.dir));
    expect(summary.tiles).toBe(ds.tiles.length);
    expect(summary.slides).toBe(new Set(ds.tiles.map((t) => t.slideId)).size);
    expect(summary.patients).toBe(new Set(ds.tiles.map((t) => t.patientId)).size);
    for (const site of new Set(ds.tiles.map((t) => t.site))) {
      const tiles = ds.tiles.filter((t) => t.site === site);
      expect(summary.bySite[site]).toEqual({ tiles: tiles.length, slides: new Set(tiles.map((t) => t.slideId)).size });
    }
    const anomalous = ds.tiles.filter((t) => t.anomaly).length;
    expect(summary.byAnomaly.none.tiles).toBe(ds.tiles.length - anomalous);
    expect(Object.values(summary.byGrade).reduce((n, c) => n + c.tiles, 0)).toBe(ds.tiles.length);
    expect(await patientsOfDataset(await openTileIndex(ds.dir))).toEqual(patientsOf(ds.tiles));
  });

  it('filters inside DuckDB: the same tiles, with their table indices, as filtering every tile in memory', async () => {
    const site = ds.tiles[ds.tiles.length - 1].site;
    const patients = [...new Set(ds.tiles.map((t) => t.patientId))].slice(0, 3);
    const some = await openTileDataset(ds.dir, { sites: [site], patients, anomalous: false });
    const expected = ds.tiles.filter((t) => t.site === site && patients.includes(t.patientId) && !t.anomaly);
    expect(some.tiles.length).toBeGreaterThan(0);
    expect(some.tiles).toEqual(expected);
    expect((await openTileDataset(ds.dir, { slides: [] })).tiles).toEqual([]);
    // Strings are held once per slide, not per tile.
    const [a, b] = ds.tiles.filter((t) => t.slideId === ds.tiles[0].slideId);
    expect(a.labels).toBe(b.labels);
  });

  it('a dataset of gradelab 0.1 (tiles.csv) is converted once, with a line, to the same tiles and identity', async () => {
    const old = asVersion1(join(dir, 'v1'));
    const lines: string[] = [];
    const info = log.info;
    log.info = (m: string) => void lines.push(m);
    try {
      const opened = await openTileDataset(old);
      expect(opened.tiles).toEqual(ds.tiles.map((t) => ({ ...t })));
      expect(opened.meta.sha256).toBe(ds.meta.sha256);
    } finally {
      log.info = info;
    }
    expect(lines.join('\n')).toMatch(/converting tiles\.csv \(\d+ tiles\) to the tile index tiles\.parquet, once/);
    expect(JSON.parse(readFileSync(join(old, 'dataset.json'), 'utf8')).version).toBe(2);
    expect(existsSync(join(old, 'tiles.csv'))).toBe(false);
    // The identity stored at conversion is the one gradelab 0.1 computed from its tiles.csv.
    expect(JSON.parse(readFileSync(join(old, 'dataset.json'), 'utf8')).sha256).toBe(ds.meta.sha256);
  });

  it('exports Parquet and CSV that read back as the same table', async () => {
    const csv = join(dir, 'export.csv');
    const parquet = join(dir, 'export.parquet');
    const n = await exportIndex(ds.index, csv, 'csv', { sites: [ds.tiles[0].site] });
    expect(n).toBe(ds.tiles.filter((t) => t.site === ds.tiles[0].site).length);
    expect(await exportIndex(ds.index, parquet, 'parquet')).toBe(ds.tiles.length);
    const bytes = readFileSync(parquet);
    expect([bytes.subarray(0, 4).toString(), bytes.subarray(-4).toString()]).toEqual(['PAR1', 'PAR1']);
    const header = readFileSync(csv, 'utf8').split('\n')[0].split(',');
    expect(header.slice(0, 5)).toEqual(['slide_id', 'patient_id', 'site', 'scanner', 'grade']);
    expect(header).toContain('anomaly_fraction');
  });

  it('refuses a truncated index, one of another format, and one that does not match dataset.json: one line naming it', async () => {
    const cases: [string, (d: string) => void, RegExp][] = [
      ['truncated', (d) => truncateSync(join(d, INDEX_FILE), 100), /tiles\.parquet: /],
      [
        'count',
        (d) => writeFileSync(join(d, 'dataset.json'), readFileSync(join(d, 'dataset.json'), 'utf8').replace(/"tiles": \d+/, '"tiles": 3')),
        /holds \d+ tiles, but dataset\.json records 3/,
      ],
      ['missing', (d) => truncateSync(join(d, INDEX_FILE), 0), /tiles\.parquet: /],
    ];
    for (const [name, damage, message] of cases) {
      const copy = join(dir, `bad-${name}`);
      cpSync(ds.dir, copy, { recursive: true });
      damage(copy);
      const err = await openTileDataset(copy).catch((e: unknown) => e);
      expect(isUserError(err), `${name}: ${err}`).toBe(true);
      expect((err as Error).message, name).toMatch(message);
      expect((err as Error).message.split('\n'), name).toHaveLength(1);
    }
    // Parquet files that are not this gradelab's: no format mark (another tool's), a newer format.
    for (const [name, kv, message] of [
      ['foreign', '', /not a gradelab tile index \(no format mark/],
      ['newer', ", KV_METADATA {format: 'gradelab-tiles/3'}", /tile index format "gradelab-tiles\/3" is not supported/],
    ] as const) {
      const copy = join(dir, `bad-${name}`);
      cpSync(ds.dir, copy, { recursive: true });
      await queryRows(
        `COPY (SELECT * FROM read_parquet(${sqlString(ds.index)})) TO ${sqlString(join(copy, INDEX_FILE))} (FORMAT parquet${kv})`,
        copy,
      );
      await expect(openTileDataset(copy), name).rejects.toThrow(message);
    }
  });
});
