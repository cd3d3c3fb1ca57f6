import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError, groupBy, InputError } from '../core/index.ts';
import { EmbeddingCache, type EmbeddingIndex } from './embeddings.ts';
import { readH5Datasets } from './h5.ts';
import type { PatchSource } from './patchImport.ts';
import type { TileDataset } from './tileDataset.ts';

/**
 * Features computed elsewhere: the toolkit and the encoder's name (what a head trained on them looks for
 * in any dataset), their width, and the SHA-256 of the feature files as they were imported (provenance).
 */
export interface ImportedFeatures {
  tool: PatchSource;
  name: string;
  sha256: string;
  dim: number;
}

/**
 * The embedding-cache identity of imported features: the encoder by toolkit and name (so another
 * hospital's features from the same encoder are found by the same head), no ONNX file, no normalisation
 * gradelab applied.
 */
export function importedEncoder(f: Pick<ImportedFeatures, 'tool' | 'name'>, tileSize: number, filesSha256 = ''): EmbeddingIndex['encoder'] {
  const sha256 = createHash('sha256').update(`imported:${f.tool}:${f.name}`).digest('hex');
  return {
    path: `${f.tool}:${f.name}`,
    sha256,
    inputSize: tileSize,
    mean: [],
    std: [],
    imported: { tool: f.tool, name: f.name, filesSha256 },
  };
}

/** Where each toolkit writes a slide's features: CLAM's FEATURES/h5_files/SLIDE.h5, TRIDENT's features_ENC/SLIDE.h5. */
export function featureFile(dir: string, slideId: string): string {
  const nested = join(dir, 'h5_files', `${slideId}.h5`);
  return existsSync(nested) ? nested : join(dir, `${slideId}.h5`);
}

/** TRIDENT names its folder features_<encoder>; CLAM users name theirs. */
export function featureSetName(dir: string): string {
  const base = basename(dir.replace(/[/\\](h5_files)?[/\\]?$/, ''));
  return base.replace(/^features_/, '') || base;
}

async function hashFiles(files: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${basename(f)}\n`);
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

/** One slide's features in the dataset's tile order, found by coordinates (the files may hold them in any order). */
async function slideFeatures(
  file: string,
  what: string,
  tiles: readonly { x: number; y: number }[],
): Promise<{ dim: number; values: Float32Array }> {
  const { features, coords } = await readH5Datasets(file, ['features', 'coords'], what);
  if (features.shape.length !== 2) throw new InputError(`${file}: "features" has shape [${features.shape}], expected [N, D]`);
  const [n, dim] = features.shape;
  if (coords.shape.length !== 2 || coords.shape[1] !== 2)
    throw new InputError(`${file}: "coords" has shape [${coords.shape}], expected [N, 2]`);
  if (coords.shape[0] !== n) throw new InputError(`${file}: ${n} feature vectors for ${coords.shape[0]} coordinates`);
  if (n !== tiles.length) throw new InputError(`${file}: ${n} feature vectors, but the slide's patch file has ${tiles.length} patches`);
  if (!(features.values instanceof Float32Array || features.values instanceof Float64Array))
    throw new InputError(`${file}: "features" holds ${features.values.constructor.name} values, expected 32- or 64-bit floats`);
  const row = new Map<string, number>();
  for (let i = 0; i < n; i++) row.set(`${Number(coords.values[2 * i])},${Number(coords.values[2 * i + 1])}`, i);
  const values = new Float32Array(n * dim);
  tiles.forEach((t, at) => {
    const i = row.get(`${t.x},${t.y}`);
    if (i === undefined) throw new InputError(`${file}: no feature vector for the patch at (${t.x}, ${t.y})`);
    for (let j = 0; j < dim; j++) {
      const v = Number(features.values[i * dim + j]);
      if (!Number.isFinite(v)) throw new InputError(`${file}: feature ${j} of the patch at (${t.x}, ${t.y}) is ${v}`);
      values[at * dim + j] = v;
    }
  });
  return { dim, values };
}

/**
 * Features that CLAM or TRIDENT computed (one HDF5 file per slide: `features` N x D and the `coords` they
 * belong to) into a dataset's embedding cache, slide by slide and matched to its tiles by coordinates, so
 * heads, MIL, OOD and audits run on them as on features gradelab computed. Refused with one line naming
 * the file: a missing file, a count that differs from the patches, coordinates the patches lack, slides of
 * different widths, values that are not finite numbers.
 */
export async function importFeatures(
  ds: TileDataset,
  options: { from: PatchSource; features: string; name?: string },
): Promise<{ cache: EmbeddingCache; imported: ImportedFeatures }> {
  if (!existsSync(options.features)) throw new ConfigError(`--features: ${options.features} not found`);
  const what = `${options.from === 'clam' ? 'CLAM' : 'TRIDENT'} feature file`;
  const bySlide = groupBy(ds.tiles, (t) => t.slideId);
  const files = [...bySlide.keys()].map((s) => featureFile(options.features, s));
  for (const f of files) if (!existsSync(f)) throw new InputError(`${f}: ${what} not found`);
  const name = options.name ?? featureSetName(options.features);
  const sha256 = await hashFiles(files);
  let cache: EmbeddingCache | undefined;
  let first = '';
  for (const [i, [slide, tiles]] of [...bySlide].entries()) {
    const { dim, values } = await slideFeatures(files[i], what, tiles);
    if (!cache) {
      first = files[i];
      cache = await EmbeddingCache.create(ds, { encoder: importedEncoder({ tool: options.from, name }, ds.meta.tileSize, sha256), dim });
    } else if (dim !== cache.dim) throw new InputError(`${files[i]}: ${dim} features per patch, but ${first} has ${cache.dim}`);
    await cache.write(slide, values);
  }
  if (!cache) throw new ConfigError(`${ds.dir}: no tiles to import features for`);
  return { cache, imported: { tool: options.from, name, sha256, dim: cache.dim } };
}

/** The imported feature sets a dataset holds, by name (newest import of a name wins). */
export function importedFeatureSets(ds: TileDataset): Map<string, { cache: EmbeddingCache; imported: ImportedFeatures }> {
  const out = new Map<string, { cache: EmbeddingCache; imported: ImportedFeatures }>();
  const root = join(ds.dir, 'embeddings');
  if (!existsSync(root)) return out;
  for (const key of readdirSync(root).sort()) {
    if (!existsSync(join(root, key, 'index.json'))) continue;
    const cache = EmbeddingCache.openKey(ds, key);
    const imported = cache?.index.encoder.imported as { tool: PatchSource; name: string; filesSha256: string } | undefined;
    if (!cache || !imported) continue;
    out.set(imported.name, { cache, imported: { tool: imported.tool, name: imported.name, sha256: imported.filesSha256, dim: cache.dim } });
  }
  return out;
}

/** The features a head was trained on, in this dataset; one line saying how to import them when absent. */
export function openImportedFeatures(ds: TileDataset, f: ImportedFeatures): EmbeddingCache {
  const cache = EmbeddingCache.open(ds, importedEncoder(f, ds.meta.tileSize));
  if (!cache)
    throw new InputError(
      `${ds.dir}: holds no ${f.tool} features "${f.name}"; import them with \`gradelab dataset import --from ${f.tool} ... --features DIR --encoder ${f.name}\``,
    );
  if (cache.dim !== f.dim)
    throw new InputError(`${cache.dir}: ${f.tool} features "${f.name}" of width ${cache.dim}, the head takes ${f.dim}`);
  return cache;
}
