import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { ConfigError, createRng, InputError, shuffled, workerEntry, type TileBatch } from '../core/index.ts';
import { decodeBatch, type BatchTask, type TransformRef } from './loaderTask.ts';
import type { TileDataset, TileRow } from './tileDataset.ts';
import type { WorkerUserError } from './loaderWorker.ts';

/** A worker's batch, or the user's error it sent back as data, thrown again here with its code. */
function fromWorker(result: Float32Array | WorkerUserError): Float32Array {
  if (result instanceof Float32Array) return result;
  throw new InputError(result.userError, { code: result.code });
}

export interface LoaderOptions {
  batchSize: number;
  seed: number;
  shuffle?: boolean;
  /** Drop the last incomplete batch (training) or keep it (evaluation). */
  dropLast?: boolean;
  /** Worker threads decoding and augmenting; 0 decodes on the calling thread. */
  workers?: number;
  /** Batches prepared ahead of the consumer. */
  prefetch?: number;
  transform?: TransformRef;
  /** Tile order weights for class-balanced sampling: drawn with replacement when given. */
  weights?: number[];
  /** Tiles per epoch (default: all): a seeded subset of the permutation, or that many weighted draws. */
  samples?: number;
}

export interface Batch {
  x: TileBatch;
  /** Grade per tile (-1 when unlabelled). */
  labels: Int32Array;
  tiles: TileRow[];
}

/**
 * Shuffled, seeded Float32 NHWC batches from a tile dataset. Decoding and augmentation run in worker
 * threads with a bounded queue of prepared batches, so the model does not wait on data and memory
 * stays bounded. The same seed and epoch give the same batches, whatever the number of workers.
 */
export class TileLoader {
  private pool: Piscina | undefined;
  /** Batches submitted and not yet consumed: close() lets them finish before the pool goes. */
  private readonly inFlight = new Set<Promise<unknown>>();
  readonly workers: number;

  constructor(
    private readonly ds: TileDataset,
    private readonly tiles: readonly TileRow[],
    private readonly options: LoaderOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize <= 0)
      throw new ConfigError(`batch size must be a positive integer, got ${options.batchSize}`);
    if (tiles.length === 0) throw new ConfigError(`${ds.dir}: no tiles to load (empty partition?)`);
    this.workers = options.workers ?? Math.max(1, availableParallelism() - 1);
    if (this.workers > 0) {
      this.pool = new Piscina({
        filename: workerEntry(import.meta.url, 'loaderWorker'),
        minThreads: this.workers,
        maxThreads: this.workers,
        idleTimeout: 60_000,
      });
      // A worker failure surfaces through the batch's promise; never as an unhandled 'error' event.
      this.pool.on('error', () => undefined);
    }
  }

  batchesPerEpoch(): number {
    const n = (this.options.samples ?? this.tiles.length) / this.options.batchSize;
    return this.options.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** Tile order of an epoch: a seeded permutation, or a seeded weighted draw with replacement. */
  order(epoch: number): TileRow[] {
    const rng = createRng(this.options.seed).fork(`epoch-${epoch}`);
    if (this.options.weights) {
      const w = this.options.weights;
      if (w.length !== this.tiles.length) throw new ConfigError('sampling weights must have one entry per tile');
      const cum = new Float64Array(w.length);
      let s = 0;
      for (let i = 0; i < w.length; i++) cum[i] = s += w[i];
      return Array.from({ length: this.options.samples ?? this.tiles.length }, () => {
        const u = rng.next() * s;
        let lo = 0;
        let hi = cum.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cum[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        return this.tiles[lo];
      });
    }
    const order = this.options.shuffle === false ? this.tiles.slice() : shuffled(this.tiles, rng);
    return this.options.samples ? order.slice(0, this.options.samples) : order;
  }

  private task(batch: TileRow[], epoch: number): BatchTask {
    return {
      dir: this.ds.dir,
      encoding: this.ds.meta.encoding,
      tileSize: this.ds.meta.tileSize,
      items: batch.map((t) => ({
        shard: t.shard,
        offset: t.offset,
        length: t.length,
        slidePath: t.slidePath,
        x: t.x,
        y: t.y,
        level: t.level,
        readSize: t.readSize,
        seed: `${this.options.seed}/e${epoch}/t${t.index}`,
      })),
      transform: this.options.transform,
    };
  }

  async *epoch(epoch = 0): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const bs = this.options.batchSize;
    const batches: TileRow[][] = [];
    for (let i = 0; i < order.length; i += bs) {
      const b = order.slice(i, i + bs);
      if (b.length < bs && this.options.dropLast) break;
      batches.push(b);
    }
    const prefetch = Math.max(1, this.options.prefetch ?? Math.max(2, this.workers * 2));
    const pending: Promise<Float32Array>[] = [];
    let next = 0;
    const submit = () => {
      const task = this.task(batches[next++], epoch);
      const p = this.pool ? this.pool.run(task).then(fromWorker) : decodeBatch(task);
      const settled = p.then(
        () => undefined,
        () => undefined,
      ); // errors surface where p is awaited
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
      pending.push(p);
    };
    while (next < batches.length && pending.length < prefetch) submit();
    for (let i = 0; i < batches.length; i++) {
      const data = await pending.shift()!;
      if (next < batches.length) submit();
      const tiles = batches[i];
      const side = Math.round(Math.sqrt(data.length / tiles.length / 3));
      yield {
        x: { n: tiles.length, height: side, width: side, channels: 3, data },
        labels: Int32Array.from(tiles, (t) => t.grade ?? -1),
        tiles,
      };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.inFlight]);
    await this.pool?.destroy();
    this.pool = undefined;
  }
}
