import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import sharp from 'sharp';
import { DatasetError, guardedTempPath, nameFileOnError, type RgbImage } from '../core/index.ts';
import { BoundedHandles } from './boundedHandles.ts';

/**
 * Tile pixels live in one shard file per slide: tiles appended back to back, each found by the
 * (offset, length) that tiles.csv records, so any tile is one positioned read away. 'jpeg' stores
 * encoded tiles (about 10x smaller), 'raw' stores RGB bytes (no decode at all; 196 kB per 256px tile).
 */
export type TileEncoding = 'jpeg' | 'raw';

export class ShardWriter {
  private offset = 0;
  private constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    /** Unregisters the removal of the temp shard on interrupt, once committed or aborted. */
    private readonly release: () => void,
    readonly path: string,
  ) {}

  static async create(path: string): Promise<ShardWriter> {
    const { tmp, release } = guardedTempPath(path);
    try {
      return new ShardWriter(await open(tmp, 'r+'), tmp, release, path);
    } catch (err) {
      release();
      throw err;
    }
  }

  async append(bytes: Uint8Array): Promise<{ offset: number; length: number }> {
    const at = this.offset;
    await this.fh.write(bytes, 0, bytes.length, at).catch(nameFileOnError(this.path));
    this.offset += bytes.length;
    return { offset: at, length: bytes.length };
  }

  /** Makes the shard visible under its final name. */
  async commit(): Promise<void> {
    await this.fh.sync().catch(nameFileOnError(this.path));
    await this.fh.close().catch(nameFileOnError(this.path));
    await rename(this.tmp, this.path);
    this.release();
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
    this.release();
  }
}

export async function encodeTile(img: RgbImage, encoding: TileEncoding, quality: number): Promise<Uint8Array> {
  if (encoding === 'raw') return img.data;
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:4:4' })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Decodes a stored tile. `where` names it for the error a damaged dataset gets (the shard and the byte
 * offset): a tile that does not decode to the dataset's size is the user's data to fix, not a crash.
 */
export async function decodeTile(bytes: Uint8Array, encoding: TileEncoding, tileSize: number, where = 'tile'): Promise<RgbImage> {
  if (encoding === 'raw') {
    if (bytes.length !== tileSize * tileSize * 3)
      throw new DatasetError(
        where,
        `raw tile has ${bytes.length} bytes, expected ${tileSize * tileSize * 3} (the dataset is damaged: tile it again)`,
      );
    return { width: tileSize, height: tileSize, data: bytes };
  }
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DatasetError(
      where,
      `the tile does not decode (${(err as Error).message.split('\n')[0]}): the dataset is damaged, tile it again`,
    );
  }
  const { data, info } = decoded;
  if (info.width !== tileSize || info.height !== tileSize || info.channels !== 3) {
    throw new DatasetError(where, `tile decodes to ${info.width}x${info.height}x${info.channels}, expected ${tileSize}x${tileSize}x3`);
  }
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Positioned reads from shard files, keeping a bounded number of file handles open (BoundedHandles). */
export class ShardReader {
  private readonly handles: BoundedHandles<FileHandle>;
  constructor(maxOpen = 64) {
    this.handles = new BoundedHandles(
      maxOpen,
      (path) => open(path, 'r'),
      (fh) => fh.close(),
    );
  }

  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    return this.handles.use(path, async (fh) => {
      const buf = new Uint8Array(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length)
        throw new DatasetError(
          path,
          `short read at byte ${offset} (${bytesRead} of ${length} bytes): the shard is truncated; tile the slide again`,
        );
      return buf;
    });
  }

  async close(): Promise<void> {
    await this.handles.close();
  }
}
