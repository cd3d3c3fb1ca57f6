import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { ConfigError, InputError, writeFileAtomic } from '../core/index.ts';
import { featureFile, importFeatures } from './featureImport.ts';
import { readH5Datasets } from './h5.ts';
import type { Manifest, SlideRecord } from './manifest.ts';
import { openSlide } from './openSlide.ts';
import { writeTileTable } from './tileBuilder.ts';
import {
  DATASET_VERSION,
  INDEX_TABLE_COLUMNS,
  slideColumns,
  openTileDataset,
  type TileDataset,
  type TileDatasetMeta,
} from './tileDataset.ts';
import { INDEX_COORDS_COLUMNS } from './tileIndex.ts';

/** The patch-coordinate files of the field's toolkits. */
export type PatchSource = 'clam' | 'trident';

export interface ImportPatchesOptions {
  from: PatchSource;
  /** The folder of patch files: CLAM's patches/ (SLIDE.h5) or TRIDENT's patches/ (SLIDE_patches.h5). */
  patches: string;
  out: string;
  /** Microns per pixel of slides whose file and manifest row do not say. */
  slideMpp?: number;
  /** The toolkit's feature files of the same patches (SLIDE.h5: features, coords) into the embedding cache. */
  features?: { dir: string; name?: string };
}

/** One slide's patches in gradelab's terms: tile size, level-0 footprint, and the coordinates. */
interface SlidePatches {
  file: string;
  tileSize: number;
  footprint: number;
  coords: ArrayLike<number | bigint>;
  count: number;
  /** TRIDENT records the slide's magnification: 40x is about 0.25 um/px at level 0. */
  level0Magnification?: number;
  overlap: number;
}

/** Where each toolkit writes a slide's patch file. */
export function patchFile(from: PatchSource, dir: string, slideId: string): string {
  const name = from === 'clam' ? `${slideId}.h5` : `${slideId}_patches.h5`;
  return existsSync(join(dir, 'patches', name)) ? join(dir, 'patches', name) : join(dir, name);
}

const num = (v: unknown) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : Number.NaN);

async function readPatches(from: PatchSource, file: string, levelDownsamples: number[]): Promise<SlidePatches> {
  const { coords } = await readH5Datasets(file, ['coords'], `${from === 'clam' ? 'CLAM' : 'TRIDENT'} patch file`);
  if (coords.shape.length !== 2 || coords.shape[1] !== 2)
    throw new InputError(`${file}: "coords" has shape [${coords.shape}], expected [N, 2]`);
  const need = (key: string) => {
    const v = num(coords.attrs[key]);
    if (!Number.isFinite(v) || v <= 0) throw new InputError(`${file}: the "coords" dataset lacks a positive "${key}" attribute`);
    return v;
  };
  const tileSize = need('patch_size');
  let footprint: number;
  if (from === 'trident') footprint = need('patch_size_level0');
  else {
    const level = num(coords.attrs.patch_level);
    if (!Number.isInteger(level) || level < 0 || level >= levelDownsamples.length)
      throw new InputError(
        `${file}: patch_level ${String(coords.attrs.patch_level)} is not a level of the slide (0..${levelDownsamples.length - 1})`,
      );
    footprint = tileSize * levelDownsamples[level];
  }
  const mag = num(coords.attrs.level0_magnification);
  return {
    file,
    tileSize,
    footprint,
    coords: coords.values,
    count: coords.shape[0],
    level0Magnification: Number.isFinite(mag) && mag > 0 ? mag : undefined,
    overlap: Math.max(0, num(coords.attrs.overlap) || 0),
  };
}

/** The level a footprint is read at (the most reduced one not coarser than the tile) and the region read there. */
function readPlan(levelDownsamples: number[], footprint: number, tileSize: number): { level: number; readSize: number } {
  const wanted = footprint / tileSize;
  let level = 0;
  levelDownsamples.forEach((d, i) => {
    if (d <= wanted * 1.0001 && d > levelDownsamples[level]) level = i;
  });
  return { level, readSize: Math.round(footprint / levelDownsamples[level]) };
}

/**
 * A coordinates-only gradelab dataset from CLAM's or TRIDENT's patch files: one per manifest slide,
 * their level-0 coordinates, patch size and level (or level-0 patch size) taken as they are, pixels read
 * from the slides at use. Refused with one line naming the file: a missing or foreign patch file,
 * coordinates outside the slide, a magnification that disagrees with the slide's mpp, slides patched at
 * different sizes or resolutions.
 */
export async function importPatches(manifest: Manifest, options: ImportPatchesOptions): Promise<TileDataset> {
  const { out, from } = options;
  if (existsSync(join(out, 'dataset.json'))) throw new ConfigError(`${out}: already holds a dataset; choose a new --out`);
  if (options.features) {
    if (!existsSync(options.features.dir)) throw new ConfigError(`--features: ${options.features.dir} not found`);
    for (const r of manifest.records) {
      const f = featureFile(options.features.dir, r.slideId);
      if (!existsSync(f)) throw new InputError(`${f}: ${from === 'clam' ? 'CLAM' : 'TRIDENT'} feature file not found`);
    }
  }
  const header = [...INDEX_TABLE_COLUMNS(manifest.labelColumns), ...INDEX_COORDS_COLUMNS];
  let first: { tileSize: number; mpp: number; overlap: number; file: string } | undefined;

  async function slideRows(rec: SlideRecord): Promise<string> {
    const file = patchFile(from, options.patches, rec.slideId);
    const slide = await openSlide(rec.path, { id: rec.slideId });
    try {
      const downsamples = slide.levels.map((l) => l.downsample);
      const p = await readPatches(from, file, downsamples);
      const slideMpp = rec.mpp ?? slide.mpp ?? options.slideMpp;
      if (slideMpp === undefined) throw new InputError(`${rec.path}: no microns per pixel in the file or the manifest; give --slide-mpp`);
      if (p.level0Magnification !== undefined && Math.abs(slideMpp * p.level0Magnification - 10) / 10 > 0.25)
        throw new InputError(
          `${p.file}: patched at level-0 magnification ${p.level0Magnification}x (about ${(10 / p.level0Magnification).toFixed(3)} um/px), but the slide is at ${slideMpp} um/px`,
        );
      const mpp = (slideMpp * p.footprint) / p.tileSize;
      first ??= { tileSize: p.tileSize, mpp, overlap: p.overlap, file: p.file };
      if (p.tileSize !== first.tileSize || Math.abs(mpp - first.mpp) / first.mpp > 0.02)
        throw new InputError(
          `${p.file}: ${p.tileSize} px patches at ${mpp.toFixed(4)} um/px, but ${first.file} has ${first.tileSize} px at ${first.mpp.toFixed(4)}: one dataset has one tile size and resolution`,
        );
      const { width, height } = slide.levels[0];
      const { level, readSize } = readPlan(downsamples, p.footprint, p.tileSize);
      const slidePath = relative(out, rec.path).split(sep).join('/');
      const rows: string[][] = [];
      for (let i = 0; i < p.count; i++) {
        const x = Number(p.coords[2 * i]);
        const y = Number(p.coords[2 * i + 1]);
        if (!(x >= 0 && y >= 0 && x + p.footprint <= width + 1 && y + p.footprint <= height + 1))
          throw new InputError(
            `${p.file}: patch ${i} at (${x}, ${y}), ${p.footprint} px at level 0, is outside the slide (${width} x ${height})`,
          );
        rows.push([
          ...slideColumns(rec, manifest.labelColumns),
          String(x),
          String(y),
          String(level),
          mpp.toFixed(4),
          '1', // the toolkit kept the patch as tissue
          '',
          '0',
          '0',
          rec.anomaly ? '' : '0',
          slidePath,
          String(readSize),
        ]);
      }
      return rows.length ? stringify(rows) : '';
    } finally {
      await slide.close();
    }
  }

  // The first slide sets the dataset's tile size and resolution (part of its identity, hashed before any
  // row); every slide's rows then stream into the index, never all in memory at once.
  if (!manifest.records.length) throw new ConfigError(`${manifest.path}: no slides to import`);
  const firstRows = await slideRows(manifest.records[0]);
  if (!first) throw new ConfigError(`${manifest.path}: no slides to import`);
  const meta: TileDatasetMeta = {
    version: DATASET_VERSION,
    task: manifest.task,
    tileSize: first.tileSize,
    mpp: Number(first.mpp.toFixed(4)),
    stride: Math.max(1, first.tileSize - first.overlap),
    minTissue: 0,
    tissueMethod: 'saturation',
    encoding: 'coords',
    quality: 90,
    manifest: relative(out, manifest.path).split(sep).join('/'),
    manifestSha256: createHash('sha256').update(readFileSync(manifest.path)).digest('hex'),
    labelColumns: manifest.labelColumns,
    ...(options.slideMpp !== undefined ? { slideMpp: options.slideMpp } : {}),
    importedFrom: { tool: from, patches: relative(out, options.patches).split(sep).join('/') },
    complete: false,
    slides: manifest.records.length,
    tiles: 0,
    failedSlides: 0,
  };
  async function* rows(): AsyncGenerator<string> {
    yield firstRows;
    for (const rec of manifest.records.slice(1)) yield await slideRows(rec);
  }
  const created = !existsSync(out);
  await mkdir(out, { recursive: true });
  try {
    meta.tiles = await writeTileTable(out, meta, manifest.labelColumns, header, rows());
  } catch (err) {
    // A bad patch file of a later slide: nothing of the dataset stays behind.
    if (created) await rm(out, { recursive: true, force: true });
    throw err;
  }
  meta.complete = true;
  await writeFileAtomic(join(out, 'dataset.json'), JSON.stringify(meta, null, 2));
  const ds = await openTileDataset(out);
  if (options.features) {
    try {
      await importFeatures(ds, { from, features: options.features.dir, name: options.features.name });
    } catch (err) {
      // A bad feature file: no dataset stays behind that looks imported with its features.
      if (created) await rm(out, { recursive: true, force: true });
      throw err;
    }
  }
  return ds;
}
