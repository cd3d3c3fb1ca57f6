import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { DatasetError, groupBy, loadJsonFile, writeFileAtomic } from '../core/index.ts';
import { halfToFloat, floatToHalf } from './float16.ts';
import { slideFileName, type TileDataset, type TileRow } from './tileDataset.ts';

export type EmbeddingDtype = 'float32' | 'float16';

const indexSchema = z.object({
  format: z.literal('gradelab-embeddings/1'),
  /** What made the embeddings: the encoder file's SHA-256 and how tiles were fed to it. */
  encoder: z
    .object({ path: z.string(), sha256: z.string(), inputSize: z.number().int(), mean: z.array(z.number()), std: z.array(z.number()) })
    .loose(),
  dim: z.number().int().positive(),
  dtype: z.enum(['float32', 'float16']),
  /** SHA-256 of the dataset's tile list: re-tiling the dataset invalidates the cache. */
  tilesSha256: z.string(),
  slides: z.number().int(),
  tiles: z.number().int(),
  createdAt: z.string(),
});

export type EmbeddingIndex = z.infer<typeof indexSchema>;
export type EncoderIdentity = EmbeddingIndex['encoder'];

/** A cache folder per encoder and input preparation, so two encoders (or normalisations) never mix. */
export function embeddingKey(encoder: Pick<EncoderIdentity, 'sha256' | 'inputSize' | 'mean' | 'std'>): string {
  return createHash('sha256')
    .update(JSON.stringify([encoder.sha256, encoder.inputSize, encoder.mean, encoder.std]))
    .digest('hex')
    .slice(0, 16);
}

export function embeddingDir(ds: TileDataset, key: string): string {
  return join(ds.dir, 'embeddings', key);
}

export function tileListSha256(ds: TileDataset): string {
  const h = createHash('sha256');
  for (const t of ds.tiles) h.update(`${t.slideId},${t.x},${t.y},${t.level}\n`);
  return h.digest('hex');
}

const bytesOf = (dtype: EmbeddingDtype) => (dtype === 'float16' ? 2 : 4);

/**
 * The embeddings of a dataset's tiles under one frozen encoder: `index.json` (encoder, width, dtype,
 * tile list hash) and one file per slide holding its tiles' vectors in tiles.csv order. A slide file is
 * written atomically and is complete when its size is tiles x dim x bytes, so an interrupted or sharded
 * extraction resumes slide by slide and shards on many machines never write the same file.
 */
export class EmbeddingCache {
  private readonly slideTiles: Map<string, TileRow[]>;
  private readonly position = new Map<number, { slide: string; at: number }>();

  private constructor(
    readonly ds: TileDataset,
    readonly dir: string,
    readonly index: EmbeddingIndex,
  ) {
    this.slideTiles = groupBy(ds.tiles, (t) => t.slideId);
    for (const [slide, tiles] of this.slideTiles) tiles.forEach((t, at) => this.position.set(t.index, { slide, at }));
  }

  /**
   * Opens (or starts) the cache for an encoder; an existing one must match its encoder, width and tiles.
   * Without a dtype an existing cache keeps its own (float32 for a new one).
   */
  static async create(
    ds: TileDataset,
    index: Omit<EmbeddingIndex, 'format' | 'tilesSha256' | 'slides' | 'tiles' | 'createdAt' | 'dtype'> & { dtype?: EmbeddingDtype },
  ): Promise<EmbeddingCache> {
    const dir = embeddingDir(ds, embeddingKey(index.encoder));
    const full: EmbeddingIndex = {
      format: 'gradelab-embeddings/1',
      ...index,
      dtype: index.dtype ?? 'float32',
      tilesSha256: tileListSha256(ds),
      slides: new Set(ds.tiles.map((t) => t.slideId)).size,
      tiles: ds.tiles.length,
      createdAt: new Date().toISOString(),
    };
    const path = join(dir, 'index.json');
    if (existsSync(path)) {
      const prev = loadJsonFile(path, indexSchema, 'embedding index');
      if (prev.tilesSha256 !== full.tilesSha256)
        throw new DatasetError(dir, 'holds embeddings of another tiling of this dataset; remove the folder and extract again');
      if (!index.dtype) full.dtype = prev.dtype;
      if (prev.dim !== full.dim || prev.dtype !== full.dtype)
        throw new DatasetError(
          dir,
          `holds ${prev.dtype} embeddings of width ${prev.dim}, not ${full.dtype} of width ${full.dim}; remove the folder or use --dtype ${prev.dtype}`,
        );
      return new EmbeddingCache(ds, dir, prev);
    }
    await writeFileAtomic(path, `${JSON.stringify(full, null, 2)}\n`);
    return new EmbeddingCache(ds, dir, full);
  }

  /** The cache for an encoder when its index exists and matches the dataset; undefined otherwise. */
  static open(ds: TileDataset, encoder: Pick<EncoderIdentity, 'sha256' | 'inputSize' | 'mean' | 'std'>): EmbeddingCache | undefined {
    return EmbeddingCache.openKey(ds, embeddingKey(encoder));
  }

  /** The cache in embeddings/KEY when its index matches the dataset; undefined otherwise. */
  static openKey(ds: TileDataset, key: string): EmbeddingCache | undefined {
    const dir = embeddingDir(ds, key);
    const path = join(dir, 'index.json');
    if (!existsSync(path)) return undefined;
    const index = loadJsonFile(path, indexSchema, 'embedding index');
    if (index.tilesSha256 !== tileListSha256(ds)) return undefined;
    return new EmbeddingCache(ds, dir, index);
  }

  get dim(): number {
    return this.index.dim;
  }

  slides(): string[] {
    return [...this.slideTiles.keys()];
  }

  tilesOf(slide: string): TileRow[] {
    return this.slideTiles.get(slide) ?? [];
  }

  private file(slide: string): string {
    const tiles = this.slideTiles.get(slide);
    if (!tiles) throw new DatasetError(this.ds.dir, `no slide "${slide}"`);
    // Named as the slide's shard is; a coordinates-only dataset has no shard, so by the slide's id.
    const name = tiles[0].shard ? basename(tiles[0].shard, '.bin') : slideFileName(slide);
    return join(this.dir, `${name}.${this.index.dtype === 'float16' ? 'f16' : 'f32'}`);
  }

  has(slide: string): boolean {
    const f = this.file(slide);
    return existsSync(f) && statSync(f).size === this.tilesOf(slide).length * this.dim * bytesOf(this.index.dtype);
  }

  async write(slide: string, vectors: Float32Array): Promise<void> {
    const n = this.tilesOf(slide).length;
    if (vectors.length !== n * this.dim)
      throw new DatasetError(this.dir, `slide ${slide}: ${vectors.length} values for ${n} tiles x ${this.dim}`);
    const data = this.index.dtype === 'float16' ? floatToHalf(vectors) : vectors;
    await writeFileAtomic(this.file(slide), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  missing(tiles: readonly TileRow[]): string[] {
    return [...new Set(tiles.map((t) => t.slideId))].filter((s) => !this.has(s));
  }

  /** n x dim embeddings of the given tiles (any subset, any order); refuses when a slide is missing. */
  read(tiles: readonly TileRow[]): Float32Array {
    const missing = this.missing(tiles);
    if (missing.length)
      throw new DatasetError(
        this.dir,
        `embeddings of ${missing.length} slide(s) are missing (${missing.slice(0, 3).join(', ')}); ${this.index.encoder.imported ? 'import their feature files with `gradelab dataset import ... --features DIR`' : 'run `gradelab features` over every shard'}`,
      );
    const d = this.dim;
    const out = new Float32Array(tiles.length * d);
    const loaded = new Map<string, Float32Array>();
    tiles.forEach((t, i) => {
      const pos = this.position.get(t.index);
      if (!pos) throw new DatasetError(this.ds.dir, `tile ${t.index} is not in the dataset`);
      let vectors = loaded.get(pos.slide);
      if (!vectors) {
        const bytes = readFileSync(this.file(pos.slide));
        const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        vectors = this.index.dtype === 'float16' ? halfToFloat(new Uint16Array(copy)) : new Float32Array(copy);
        loaded.set(pos.slide, vectors);
      }
      out.set(vectors.subarray(pos.at * d, (pos.at + 1) * d), i * d);
    });
    return out;
  }
}
