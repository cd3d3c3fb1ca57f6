import { pathToFileURL } from 'node:url';
import { ConfigError, createRng, toFloat32, type RgbImage, type Rng } from '../core/index.ts';
import { TileReader, type StoredTile, type TileStore } from './tileReader.ts';

/** A tile transform made in the worker from a serialisable spec (workers cannot receive closures). */
export interface TransformRef {
  /** Module path or URL exporting `createTileTransform(spec) => (img, rng) => img | Promise<img>`. */
  module: string;
  spec: unknown;
}

export interface BatchTask {
  dir: string;
  encoding: TileStore;
  tileSize: number;
  items: (StoredTile & { seed: string })[];
  transform?: TransformRef;
}

type TileTransform = (img: RgbImage, rng: Rng) => RgbImage | Promise<RgbImage>;

const transforms = new Map<string, Promise<TileTransform>>();

function transformFor(ref: TransformRef): Promise<TileTransform> {
  const key = `${ref.module}\n${JSON.stringify(ref.spec)}`;
  let t = transforms.get(key);
  if (!t) {
    const url = /^[a-z]+:/.test(ref.module) ? ref.module : pathToFileURL(ref.module).href;
    t = import(url).then((m) => m.createTileTransform(ref.spec) as TileTransform);
    transforms.set(key, t);
  }
  return t;
}

/**
 * Reads, decodes and transforms one batch into Float32 NHWC in [0,1]. Each tile's randomness comes
 * from its own seed, so the result does not depend on which worker ran it or in what order.
 */
export async function decodeBatch(task: BatchTask): Promise<Float32Array> {
  const transform = task.transform ? await transformFor(task.transform) : undefined;
  // Handles are opened per batch and closed with it: a worker thread can be terminated at any time,
  // and file handles it still held would be closed by the garbage collector (a Node warning).
  const reader = new TileReader();
  let images: RgbImage[];
  try {
    images = await Promise.all(
      task.items.map(async (item) => {
        const img = await reader.read({ dir: task.dir, encoding: task.encoding, tileSize: task.tileSize }, item);
        return transform ? transform(img, createRng(item.seed)) : img;
      }),
    );
  } finally {
    await reader.close();
  }
  // A pipeline may crop (random-crop): every tile of a batch must come out the same size.
  const { width, height } = images[0];
  if (width !== height) throw new ConfigError(`the augmentation pipeline gave ${width}x${height} tiles; the loader batches square tiles`);
  const per = width * height * 3;
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height) {
      throw new ConfigError(
        `the augmentation pipeline gave tiles of different sizes in one batch (${width}x${height} and ${img.width}x${img.height})`,
      );
    }
    toFloat32(img, out, i * per);
  });
  return out;
}
