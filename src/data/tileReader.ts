import { join } from 'node:path';
import type { RgbImage } from '../core/index.ts';
import { BoundedHandles } from './boundedHandles.ts';
import { openSlide } from './openSlide.ts';
import { decodeTile, ShardReader, type TileEncoding } from './shards.ts';
import type { SlideSource } from './slide.ts';
import { readTile } from './tiling.ts';

/** How a dataset keeps its tiles: encoded in shards (jpeg, raw), or as coordinates read from the slide at use. */
export type TileStore = TileEncoding | 'coords';

/** What reading a tile needs to know of its dataset. */
export interface TileStoreInfo {
  dir: string;
  encoding: TileStore;
  tileSize: number;
}

/** What reading a tile needs to know of it: its shard bytes, or its slide region (coordinates store). */
export interface StoredTile {
  shard: string;
  offset: number;
  length: number;
  slidePath?: string;
  x: number;
  y: number;
  level: number;
  readSize?: number;
}

/**
 * Reads dataset tiles from either store: shards (a positioned read and a decode) or, for a
 * coordinates-only dataset, the slide itself through the checked reader (the region at the tile's level,
 * resampled to the tile size as tiling does). Keeps a bounded number of shards and slides open.
 */
export class TileReader {
  private readonly shards = new ShardReader();
  private readonly slides = new BoundedHandles<SlideSource>(
    8,
    (path) => openSlide(path),
    (slide) => slide.close(),
  );

  async read(store: TileStoreInfo, tile: StoredTile): Promise<RgbImage> {
    if (store.encoding === 'coords') {
      const { x, y, level, readSize } = tile;
      return this.slides.use(tile.slidePath!, (slide) => readTile(slide, { x, y, level, readSize: readSize!, tissue: 0 }, store.tileSize));
    }
    const path = join(store.dir, tile.shard);
    const bytes = await this.shards.read(path, tile.offset, tile.length);
    return decodeTile(bytes, store.encoding, store.tileSize, `${path} at byte ${tile.offset}`);
  }

  async close(): Promise<void> {
    await Promise.all([this.shards.close(), this.slides.close()]);
  }
}
