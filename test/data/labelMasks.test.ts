import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildTileDataset,
  describeMaskGrades,
  maskGrades,
  openTileDataset,
  openTileIndex,
  readManifest,
  summariseDataset,
  type TileRow,
} from '../../src/data/index.ts';
import { readModelMeta, type RgbImage } from '../../src/core/index.ts';
import { fit, parseTrainConfig, patternTargets } from '../../src/train/index.ts';
import { tempDir } from '../helpers.ts';
import { discImage, writeSharpPyramid } from './fixtures.ts';

// A PANDA-layout folder: train.csv, train_images/, train_label_masks/ (Radboud and Karolinska values),
// and one slide without a mask, as PANDA has.
const W = 1024;
const H = 768;
const dir = tempDir();
const panda = join(dir, 'panda');

/** Radboud: left of x = 576 pattern 3, right pattern 4, rows y < 128 stroma (1). Karolinska: left benign (1), right cancer (2). */
const radboud = (x: number, y: number) => (y < 128 ? 1 : x < 576 ? 3 : 4);
const karolinska = (x: number) => (x < 576 ? 1 : 2);

function maskImage(value: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(y * W + x) * 3] = value(x, y);
  return { width: W, height: H, data };
}

/** The shares a tile's footprint must have, counted from the mask's definition (not from the file). */
function expected(tile: TileRow, value: (x: number, y: number) => number, span: number): Record<number, number> {
  const counts: Record<number, number> = {};
  for (let y = tile.y; y < tile.y + span; y++)
    for (let x = tile.x; x < tile.x + span; x++) counts[value(x, y)] = (counts[value(x, y)] ?? 0) + 1 / (span * span);
  return counts;
}

const tissue = discImage(W, H, [{ cx: W / 2, cy: H / 2, r: 360 }]);

beforeAll(async () => {
  mkdirSync(join(panda, 'train_images'), { recursive: true });
  mkdirSync(join(panda, 'train_label_masks'), { recursive: true });
  for (const id of ['rad1', 'rad2', 'kar1', 'nomask']) await writeSharpPyramid(join(panda, 'train_images', `${id}.tiff`), tissue);
  for (const id of ['rad1', 'rad2'])
    await writeSharpPyramid(join(panda, 'train_label_masks', `${id}_mask.tiff`), maskImage(radboud), { compression: 'deflate' });
  await writeSharpPyramid(join(panda, 'train_label_masks', 'kar1_mask.tiff'), maskImage(karolinska), { compression: 'deflate' });
  writeFileSync(
    join(panda, 'train.csv'),
    'image_id,data_provider,isup_grade,gleason_score\nrad1,radboud,2,3+4\nrad2,radboud,5,5+5\nkar1,karolinska,1,3+3\nnomask,radboud,0,negative\n',
  );
});

describe('label masks as tile targets', () => {
  it("PANDA's masks are found beside train.csv and give each tile its class shares, by each provider's scheme", async () => {
    const manifest = readManifest(join(panda, 'train.csv'));
    expect(manifest.records.map((r) => [r.slideId, r.maskScheme ?? null])).toEqual([
      ['rad1', 'radboud'],
      ['rad2', 'radboud'],
      ['kar1', 'karolinska'],
      ['nomask', null],
    ]);
    const ds = await buildTileDataset(manifest, { out: join(dir, 'tiles'), tileSize: 128, mpp: 0.5, minTissue: 0.5 });
    expect(ds.meta.maskScheme).toBe('panda');
    const rad = ds.tiles.filter((t) => t.slideId === 'rad1');
    expect(rad.length).toBeGreaterThan(8);
    for (const t of rad) {
      const e = expected(t, radboud, 128);
      const at = `rad1 tile ${t.x},${t.y}`;
      expect(t.maskBenign, at).toBeCloseTo(e[1] ?? 0, 3);
      expect(t.maskG3, at).toBeCloseTo(e[3] ?? 0, 3);
      expect(t.maskG4, at).toBeCloseTo(e[4] ?? 0, 3);
      expect(t.maskG5, at).toBe(0);
      expect(t.maskCancer, at).toBeCloseTo((e[3] ?? 0) + (e[4] ?? 0), 3);
    }
    // The boundary at x = 576 cuts the tiles at x = 512 in half.
    expect(rad.some((t) => t.x === 512 && t.y >= 128 && Math.abs(t.maskG3! - 0.5) < 1e-3)).toBe(true);
    for (const t of ds.tiles.filter((t) => t.slideId === 'kar1')) {
      const e = expected(t, (x) => karolinska(x), 128);
      expect(t.maskBenign).toBeCloseTo(e[1] ?? 0, 3);
      expect(t.maskCancer).toBeCloseTo(e[2] ?? 0, 3);
      // Karolinska's masks say cancer, not which pattern.
      expect([t.maskG3, t.maskG4, t.maskG5]).toEqual([undefined, undefined, undefined]);
    }
    for (const t of ds.tiles.filter((t) => t.slideId === 'nomask')) expect([t.maskBenign, t.maskCancer]).toEqual([undefined, undefined]);
    // dataset info's table: each tile's majority class, counted in DuckDB.
    const summary = await summariseDataset(await openTileIndex(ds.dir));
    const byGeometry = (slide: string, cls: (t: TileRow) => string) => ds.tiles.filter((t) => t.slideId === slide).map(cls);
    const want: Record<string, number> = {};
    for (const c of [
      ...byGeometry('rad1', (t) =>
        t.maskG4! >= Math.max(t.maskBenign!, t.maskG3!) ? 'gleason 4' : t.maskG3! >= t.maskBenign! ? 'gleason 3' : 'benign',
      ),
      ...byGeometry('rad2', (t) =>
        t.maskG4! >= Math.max(t.maskBenign!, t.maskG3!) ? 'gleason 4' : t.maskG3! >= t.maskBenign! ? 'gleason 3' : 'benign',
      ),
      ...byGeometry('kar1', (t) => (t.maskCancer! >= t.maskBenign! ? 'cancer (no pattern)' : 'benign')),
      ...byGeometry('nomask', () => 'no mask'),
    ])
      want[c] = (want[c] ?? 0) + 1;
    expect(Object.fromEntries(Object.entries(summary.byMaskClass).map(([k, v]) => [k, v.tiles]))).toEqual(want);
    // Masks against labels: both Radboud masks draw more pattern 3 than 4 inside the tissue disc (the
    // boundary at x = 576 is right of its centre at 512), so 3+4 = grade group 2: rad1's label, not rad2's.
    const sums = (slide: string) =>
      ds.tiles.filter((t) => t.slideId === slide).reduce((a, t) => [a[0] + t.maskG3!, a[1] + t.maskG4!], [0, 0]);
    const [g3, g4] = sums('rad1');
    expect(g3).toBeGreaterThan(g4);
    expect(g4 / (g3 + g4)).toBeGreaterThan(0.05);
    const grades = await maskGrades(await openTileIndex(ds.dir));
    expect(grades).toEqual([
      { slideId: 'rad1', label: 2, gleason: '3+4', fromMask: 2 },
      { slideId: 'rad2', label: 5, gleason: '3+4', fromMask: 2 },
    ]);
    expect(describeMaskGrades(grades)).toBe(
      "masks vs labels: the pattern areas give the slide's grade group on 1 of 2 labelled slides; not on rad2 (label 5, mask 3+4 = 2)",
    );
  });

  it("a manifest's own masks give classes only when a scheme is given; without one no tile carries any", async () => {
    const csv = join(panda, 'manifest.csv');
    writeFileSync(csv, 'path,mask_path,isup_grade\ntrain_images/rad1.tiff,train_label_masks/rad1_mask.tiff,2\n');
    const plain = await buildTileDataset(readManifest(csv), { out: join(dir, 'plain'), tileSize: 128, mpp: 0.5 });
    expect(plain.meta.maskScheme).toBeUndefined();
    expect(plain.tiles.every((t) => t.maskBenign === undefined)).toBe(true);
    const classed = await buildTileDataset(readManifest(csv), {
      out: join(dir, 'classed'),
      tileSize: 128,
      mpp: 0.5,
      maskScheme: 'radboud',
    });
    expect(classed.meta.maskScheme).toBe('radboud');
    for (const t of classed.tiles) expect(t.maskG3).toBeCloseTo(expected(t, radboud, 128)[3] ?? 0, 3);
    // The same tiles either way; the classes are part of the dataset's identity.
    expect(classed.tiles.map((t) => [t.x, t.y])).toEqual(plain.tiles.map((t) => [t.x, t.y]));
    expect(classed.meta.sha256).not.toBe(plain.meta.sha256);
  });

  it('a mask value outside its scheme, or a mask of another size, is one line naming the mask; --skip-bad records the slide and goes on', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'train_images'), { recursive: true });
    mkdirSync(join(bad, 'train_label_masks'), { recursive: true });
    for (const id of ['a', 'b', 'c']) await writeSharpPyramid(join(bad, 'train_images', `${id}.tiff`), tissue);
    // Karolinska uses 0-2: patterns 3 and 4 are not Karolinska's (the first is named).
    await writeSharpPyramid(join(bad, 'train_label_masks', 'a_mask.tiff'), maskImage(radboud), { compression: 'deflate' });
    const small = maskImage(radboud);
    await writeSharpPyramid(
      join(bad, 'train_label_masks', 'b_mask.tiff'),
      { width: W / 2, height: H / 2, data: small.data.subarray(0, (W * H * 3) / 4) },
      {
        compression: 'deflate',
      },
    );
    writeFileSync(
      join(bad, 'train.csv'),
      'image_id,data_provider,isup_grade,gleason_score\na,karolinska,2,3+4\nb,radboud,2,3+4\nc,radboud,0,0+0\n',
    );
    const manifest = readManifest(join(bad, 'train.csv'));
    await expect(buildTileDataset(manifest, { out: join(dir, 'bad-tiles'), tileSize: 128, mpp: 0.5 })).rejects.toThrow(
      /a_mask\.tiff: holds mask value 3, which the karolinska scheme does not use \(0-2\)/,
    );
    const skipped = await buildTileDataset(manifest, { out: join(dir, 'bad-skipped'), tileSize: 128, mpp: 0.5, skipBad: true });
    expect(skipped.meta.failedSlides).toBe(2);
    expect([...new Set(skipped.tiles.map((t) => t.slideId))]).toEqual(['c']);
    const rows = (await import('node:fs')).readFileSync(join(dir, 'bad-skipped', 'slides.csv'), 'utf8');
    expect(rows).toMatch(/b_mask\.tiff: is 512 x 384 but its slide is 1024 x 768: not this slide's label mask/);
  });

  it("a pattern head learns from the PANDA folder: each provider's tiles get what their masks allow, and training writes the rule", async () => {
    const ds = await openTileDataset(join(dir, 'tiles'));
    const groups = (t: TileRow) => {
      const g = patternTargets([t]);
      return [0, 1, 2, 3]
        .filter((i) => g.weights[i] > 0)
        .map((i) => [Number(g.weights[i].toFixed(3)), [0, 1, 2, 3].filter((c) => g.members[i * 4 + c] === 1)]);
    };
    const pick = (slide: string, keep: (t: TileRow) => boolean) => ds.tiles.find((t) => t.slideId === slide && keep(t))!;
    // Radboud, wholly in the pattern 4 region: pattern 4. Karolinska cancer on a 3+3 slide: pattern 3
    // (what its label allows); Karolinska benign: benign. No mask on a benign slide: benign.
    expect(groups(pick('rad1', (t) => t.x >= 640 && t.y >= 128))).toEqual([[1, [2]]]);
    expect(groups(pick('kar1', (t) => t.x >= 640))).toEqual([[1, [1]]]);
    expect(groups(pick('kar1', (t) => t.x + 128 <= 576))).toEqual([[1, [0]]]);
    expect(groups(pick('nomask', () => true))).toEqual([[1, [0]]]);
    const config = parseTrainConfig(
      {
        name: 'panda-patterns',
        task: 'prostate',
        data: { dataset: join(dir, 'tiles'), folds: 4 },
        model: { backbone: 'resnet', width: 0.25, inputSize: 32, head: 'patterns' },
        train: { epochs: 1, batchSize: 8, tilesPerEpoch: 16, valTilesPerSlide: 4, workers: 0, replicas: 1 },
        backend: 'wasm',
      },
      'panda-patterns',
    );
    const out = join(dir, 'panda-model');
    await fit(config, { out });
    const meta = readModelMeta(out);
    expect(meta.head).toBe('patterns');
    expect(meta.patternGrading!.rule.minCancerShare).toBeGreaterThan(0);
  }, 120_000);
});
