import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DatasetError, isUserError, type GradelabError } from '../../src/core/index.ts';
import {
  buildTileDataset,
  loadSplit,
  makeSplit,
  openSlide,
  openTileDataset,
  partitionOf,
  patientsOf,
  planTiles,
  readDatasetTile,
  readManifest,
  readTile,
  saveSplit,
  TileReader,
  TileLoader,
  tilesOfPartition,
  detectTissue,
  type TileDataset,
} from '../../src/data/index.ts';
import { maxAbsDiff, tempDir } from '../helpers.ts';
import { discImage, writeSharpPyramid, writeTestSvs } from './fixtures.ts';

const dir = tempDir();
const out = join(dir, 'tiles');
const slides = [
  { id: 's1', patient: 'p1', site: 'A', grade: 0, discs: [{ cx: 300, cy: 300, r: 250 }] },
  { id: 's2', patient: 'p1', site: 'A', grade: 2, discs: [{ cx: 500, cy: 300, r: 280 }] },
  { id: 's3', patient: 'p2', site: 'B', grade: 4, discs: [{ cx: 400, cy: 350, r: 300 }] },
];
let manifestPath: string;
let ds: TileDataset;

beforeAll(async () => {
  for (const s of slides) {
    const img = discImage(900, 700, s.discs);
    if (s.id === 's3') await writeTestSvs(join(dir, `${s.id}.svs`), img);
    else await writeSharpPyramid(join(dir, `${s.id}.tiff`), img, { mpp: 0.5 });
  }
  manifestPath = join(dir, 'manifest.csv');
  writeFileSync(
    manifestPath,
    `path,patient_id,site,scanner,isup_grade\n${slides.map((s) => `${s.id}.${s.id === 's3' ? 'svs' : 'tiff'},${s.patient},${s.site},sc,${s.grade}`).join('\n')}\n`,
  );
});

describe('tile dataset', () => {
  it('tiles every slide with tissue-filtered tiles whose pixels match the slide', async () => {
    const manifest = readManifest(manifestPath);
    ds = await buildTileDataset(manifest, { out, tileSize: 64, mpp: 1.0, minTissue: 0.5 });
    expect(ds.meta.complete).toBe(true);
    const reopened = await openTileDataset(out);
    expect(reopened.tiles).toHaveLength(ds.tiles.length);
    expect(new Set(reopened.tiles.map((t) => t.slideId))).toEqual(new Set(['s1', 's2', 's3']));
    expect(reopened.tiles.every((t) => t.tissue >= 0.5)).toBe(true);
    expect(reopened.tiles.find((t) => t.slideId === 's3')!.mpp).toBeCloseTo(1.0, 3);
    expect(reopened.tiles.find((t) => t.slideId === 's2')!.labels.isup_grade).toBe('2');

    // A tile's stored pixels are the slide's pixels at the target mpp (JPEG q90 aside).
    const reader = new TileReader();
    const t = reopened.tiles.find((x) => x.slideId === 's1')!;
    const stored = await readDatasetTile(reopened, t, reader);
    const slide = await openSlide(join(dir, 's1.tiff'));
    const plan = planTiles(slide, await detectTissue(slide), { tileSize: 64, mpp: 1.0 });
    const direct = await readTile(
      slide,
      plan.tiles.find((p) => p.x === t.x && p.y === t.y)!,
      64,
    );
    let sum = 0;
    for (let i = 0; i < stored.data.length; i++) sum += Math.abs(stored.data[i] - direct.data[i]);
    expect(sum / stored.data.length).toBeLessThan(2);
    // Raw encoding stores exactly the pixels read.
    const raw = await buildTileDataset(readManifest(manifestPath), {
      out: join(dir, 'raw'),
      tileSize: 64,
      mpp: 1.0,
      minTissue: 0.5,
      encoding: 'raw',
    });
    const rt = raw.tiles.find((x) => x.slideId === 's1' && x.x === t.x && x.y === t.y)!;
    expect(maxAbsDiff((await readDatasetTile(raw, rt, reader)).data, direct.data)).toBe(0);
    await slide.close();
    await reader.close();
  });

  it('resumes: finished slides are skipped, an unfinished one is redone', async () => {
    rmSync(join(out, 'rows', 's2.csv'));
    rmSync(join(out, 'tiles.parquet'));
    const statuses: Record<string, string> = {};
    const again = await buildTileDataset(readManifest(manifestPath), {
      out,
      tileSize: 64,
      mpp: 1.0,
      minTissue: 0.5,
      onSlideDone: (r, res) => (statuses[r.slideId] = res.status),
    });
    expect(statuses).toEqual({ s1: 'skipped-existing', s2: 'done', s3: 'skipped-existing' });
    expect(again.tiles.map((t) => [t.slideId, t.x, t.y])).toEqual(ds.tiles.map((t) => [t.slideId, t.x, t.y]));
  });

  it('refuses to mix settings in one folder, and an unfinished folder', async () => {
    await expect(buildTileDataset(readManifest(manifestPath), { out, tileSize: 128, mpp: 1.0 })).rejects.toThrow(/other settings/);
    const meta = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    writeFileSync(join(out, 'dataset.json'), JSON.stringify({ ...meta, complete: false }));
    await expect(openTileDataset(out)).rejects.toThrow(/did not finish/);
    writeFileSync(join(out, 'dataset.json'), JSON.stringify(meta));
    await expect(openTileDataset(join(dir, 'nowhere'))).rejects.toBeInstanceOf(DatasetError);
  });

  it('--skip-bad records an unreadable slide and goes on; without it the run stops', async () => {
    writeFileSync(join(dir, 'broken.tiff'), 'II*\0garbage');
    const m2 = join(dir, 'manifest2.csv');
    writeFileSync(m2, `path,isup_grade\ns1.tiff,0\nbroken.tiff,1\n`);
    await expect(buildTileDataset(readManifest(m2), { out: join(dir, 'bad-stop'), tileSize: 64, mpp: 1.0 })).rejects.toThrow(
      /broken\.tiff/,
    );
    expect(existsSync(join(dir, 'bad-stop', 'tiles.parquet'))).toBe(false);
    const done = await buildTileDataset(readManifest(m2), { out: join(dir, 'bad-skip'), tileSize: 64, mpp: 0.5, skipBad: true });
    expect(done.meta.failedSlides).toBe(1);
    expect(readFileSync(join(dir, 'bad-skip', 'slides.csv'), 'utf8')).toMatch(/broken,broken,unknown,unknown,1,failed,0,/);
  });
});

describe('splits', () => {
  it('never puts a patient in two partitions and is seeded', async () => {
    const split = makeSplit(patientsOf(ds.tiles), { folds: 2, seed: 3 });
    expect(makeSplit(patientsOf(ds.tiles), { folds: 2, seed: 3 })).toEqual(split);
    for (let f = 0; f < 2; f++) {
      const parts = new Map<string, Set<string>>();
      for (const t of ds.tiles) {
        const p = partitionOf(split, t.patientId, f);
        parts.set(t.patientId, (parts.get(t.patientId) ?? new Set()).add(p));
      }
      for (const s of parts.values()) expect(s.size).toBe(1);
    }
    await saveSplit(out, split);
    expect(await loadSplit(out)).toEqual(split);
  });

  it('stratifies: each fold gets its share of every grade', () => {
    // 60 synthetic patients, grades 0-5 ten each, 1-3 slides each.
    const tiles = Array.from({ length: 60 }, (_, i) => ({
      patientId: `p${i}`,
      slideId: `s${i}`,
      site: `site${i % 3}`,
      grade: i % 6,
    })).flatMap((p, i) =>
      Array.from({ length: 1 + (i % 3) }, (_, k) => ({
        ...p,
        index: i * 3 + k,
        scanner: 'x',
        labels: {},
        anomaly: '',
        x: 0,
        y: 0,
        level: 0,
        mpp: 0.5,
        tissue: 1,
        shard: '',
        offset: 0,
        length: 0,
      })),
    );
    const split = makeSplit(patientsOf(tiles), { folds: 5, seed: 1 });
    for (let f = 0; f < 5; f++) {
      const inFold = patientsOf(tiles).filter((p) => split.patientFold[p.patientId] === f);
      expect(inFold).toHaveLength(12);
      for (let g = 0; g < 6; g++) expect(inFold.filter((p) => p.stratum === String(g))).toHaveLength(2);
    }
    const loso = makeSplit(patientsOf(tiles), { folds: 5, seed: 1, by: 'site' });
    expect(loso.foldNames).toEqual(['site0', 'site1', 'site2']);
    for (const p of patientsOf(tiles)) {
      expect(partitionOf(loso, p.patientId, loso.foldNames.indexOf(p.site))).toBe('test');
      expect(partitionOf(loso, p.patientId, (loso.foldNames.indexOf(p.site) + 1) % 3)).not.toBe('test');
    }
    expect(() => makeSplit(patientsOf(tiles.slice(0, 3)), { folds: 5, seed: 1 })).toThrow(/cannot make 5 folds/);
  });
});

describe('TileLoader', () => {
  const transform = { module: new URL('../fixtures/noiseTransform.ts', import.meta.url).pathname, spec: { amplitude: 20 } };

  it('gives the same batches with 0 or 2 worker threads, and covers each tile once per epoch', async () => {
    const train = ds.tiles;
    const inline = new TileLoader(ds, train, { batchSize: 5, seed: 9, workers: 0, transform });
    const pooled = new TileLoader(ds, train, { batchSize: 5, seed: 9, workers: 2, prefetch: 3, transform });
    const a = [];
    const b = [];
    for await (const batch of inline.epoch(1)) a.push(batch);
    for await (const batch of pooled.epoch(1)) b.push(batch);
    expect(a.length).toBe(Math.ceil(train.length / 5));
    expect(b.map((x) => x.tiles.map((t) => t.index))).toEqual(a.map((x) => x.tiles.map((t) => t.index)));
    for (let i = 0; i < a.length; i++) expect(b[i].x.data).toEqual(a[i].x.data);
    expect(a.flatMap((x) => x.tiles.map((t) => t.index)).sort((p, q) => p - q)).toEqual(train.map((t) => t.index));
    expect(a[0].x.data.length).toBe(a[0].x.n * 64 * 64 * 3);
    expect(Math.max(...a[0].x.data)).toBeLessThanOrEqual(1);
    expect([...a[0].labels]).toEqual(a[0].tiles.map((t) => t.grade));
    // Another epoch: another order.
    const e2 = [];
    for await (const batch of inline.epoch(2)) e2.push(batch.tiles.map((t) => t.index));
    expect(e2).not.toEqual(a.map((x) => x.tiles.map((t) => t.index)));
    await inline.close();
    await pooled.close();
  });

  it('drops the last short batch for training and draws by weight', async () => {
    const loader = new TileLoader(ds, ds.tiles, {
      batchSize: 4,
      seed: 1,
      workers: 0,
      dropLast: true,
      weights: ds.tiles.map((t) => (t.slideId === 's3' ? 1 : 0)),
    });
    let n = 0;
    for await (const batch of loader.epoch(0)) {
      expect(batch.x.n).toBe(4);
      expect(batch.tiles.every((t) => t.slideId === 's3')).toBe(true);
      n++;
    }
    expect(n).toBe(Math.floor(ds.tiles.length / 4));
    await loader.close();
  });

  it("a damaged tile is the dataset's fault, with or without worker threads: its shard and byte, the dataset code", async () => {
    const copy = join(dir, 'damaged');
    cpSync(out, copy, { recursive: true });
    const damaged = await openTileDataset(copy);
    const tile = damaged.tiles[3];
    const shard = join(copy, tile.shard);
    const bytes = readFileSync(shard);
    bytes.fill(0, tile.offset, tile.offset + tile.length);
    writeFileSync(shard, bytes);
    for (const workers of [0, 2]) {
      const loader = new TileLoader(damaged, damaged.tiles, { batchSize: 4, seed: 1, workers });
      const err = await (async () => {
        for await (const _ of loader.epoch(0));
      })().catch((e: unknown) => e);
      await loader.close();
      expect(isUserError(err), `${workers} workers: ${err}`).toBe(true);
      expect((err as GradelabError).code).toBe('DATASET_ERROR');
      expect((err as Error).message).toContain(`${shard} at byte ${tile.offset}: the tile does not decode`);
      expect((err as Error).message.split('\n')).toHaveLength(1);
    }
  });

  it('partitions come from the saved split', async () => {
    const split = await loadSplit(out);
    const test = tilesOfPartition(ds, split, 'test', 0);
    const train = tilesOfPartition(ds, split, 'train', 0);
    const val = tilesOfPartition(ds, split, 'val', 0);
    expect(test.length + train.length + val.length).toBe(ds.tiles.length);
    expect(() => tilesOfPartition(ds, split, 'test', 7)).toThrow(/fold 7 does not exist/);
  });
});
