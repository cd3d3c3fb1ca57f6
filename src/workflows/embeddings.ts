import { log, sha256File, silentProgress, type EncoderSpec, type ProgressFactory } from '../core/index.ts';
import { EmbeddingCache, TileLoader, type EmbeddingDtype, type TileDataset, type TileRow } from '../data/index.ts';
import { OnnxEncoder, type EngineOptions } from '../engine/index.ts';

export interface ExtractOptions {
  /** Only the slides of these tiles (default: the whole dataset). */
  tiles?: readonly TileRow[];
  dtype?: EmbeddingDtype;
  engine?: EngineOptions;
  batchSize?: number;
  progress?: ProgressFactory;
}

/**
 * Runs a frozen encoder over a dataset's tiles once and caches the embeddings beside the dataset
 * (data/embeddings.ts), slide by slide: slides already cached are skipped, so an interrupted run or
 * another shard's work is never redone. Returns the cache and how many slides it computed.
 */
export async function extractEmbeddings(
  ds: TileDataset,
  spec: EncoderSpec,
  options: ExtractOptions = {},
): Promise<{ cache: EmbeddingCache; computed: number; engine: string }> {
  const sha256 = await sha256File(spec.onnx);
  const encoder = await OnnxEncoder.open(spec.onnx, spec, options.engine);
  try {
    const cache = await EmbeddingCache.create(ds, {
      encoder: {
        path: spec.onnx,
        sha256,
        inputSize: spec.inputSize,
        mean: spec.mean,
        std: spec.std,
        layout: encoder.shape.layout.layout,
        output: encoder.shape.output,
      },
      dim: encoder.dim,
      dtype: options.dtype,
    });
    const wanted = new Set((options.tiles ?? ds.tiles).map((t) => t.slideId));
    const pending = cache.slides().filter((s) => wanted.has(s) && !cache.has(s));
    const tiles = pending.flatMap((s) => cache.tilesOf(s));
    if (!tiles.length) return { cache, computed: 0, engine: encoder.engine };
    log.info(`embedding ${tiles.length} tiles of ${pending.length} slides with ${spec.onnx} (${encoder.dim} features, ${encoder.engine})`);
    const progress = (options.progress ?? silentProgress)('tiles');
    progress.start(tiles.length, 'features');
    // One worker decodes the next batch while ONNX Runtime embeds this one.
    const loader = new TileLoader(ds, tiles, { batchSize: options.batchSize ?? 64, seed: 0, shuffle: false, workers: 1 });
    const d = encoder.dim;
    let si = 0;
    let slide = pending[si];
    let buffer = new Float32Array(cache.tilesOf(slide).length * d);
    let filled = 0;
    try {
      for await (const batch of loader.epoch(0)) {
        const y = await encoder.embed(batch.x);
        for (let i = 0; i < batch.tiles.length; i++) {
          buffer.set(y.subarray(i * d, (i + 1) * d), filled * d);
          filled++;
          if (filled * d === buffer.length) {
            await cache.write(slide, buffer);
            if (++si === pending.length) break;
            slide = pending[si];
            buffer = new Float32Array(cache.tilesOf(slide).length * d);
            filled = 0;
          }
        }
        progress.increment(batch.tiles.length);
      }
    } finally {
      progress.stop();
      await loader.close();
    }
    return { cache, computed: pending.length, engine: encoder.engine };
  } finally {
    await encoder.close();
  }
}
