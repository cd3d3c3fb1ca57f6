import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Claim, ClaimBoard, DatasetError, log, sha256File, silentProgress, type EncoderSpec, type ProgressFactory } from '../core/index.ts';
import { EmbeddingCache, slideFileName, TileLoader, type EmbeddingDtype, type TileDataset, type TileRow } from '../data/index.ts';
import { OnnxEncoder, type EngineOptions } from '../engine/index.ts';

export interface ExtractOptions {
  /** Only the slides of these tiles (default: the whole dataset). */
  tiles?: readonly TileRow[];
  dtype?: EmbeddingDtype;
  engine?: EngineOptions;
  batchSize?: number;
  progress?: ProgressFactory;
  /** Another host's claim on a slide whose heartbeat is older than this is taken over (default 5 minutes). */
  staleAfterMs?: number;
  pollMs?: number;
  /**
   * 'all' (default): embed what can be claimed and wait for slides other processes hold. 'worker': stop
   * when nothing is left to claim (a SLURM array task). 'finish': embed nothing; refused, naming the
   * slides, while any is missing from the cache.
   */
  role?: 'all' | 'worker' | 'finish';
}

/**
 * Runs a frozen encoder over a dataset's tiles once and caches the embeddings beside the dataset
 * (data/embeddings.ts), slide by slide: slides already cached are skipped, so an interrupted run or
 * another shard's work is never redone, and slides are claimed (core/claims.ts) so that any number of
 * processes can fill one cache at once. Returns the cache and how many slides it computed.
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
    let pending = cache.slides().filter((s) => wanted.has(s) && !cache.has(s));
    if (!pending.length) return { cache, computed: 0, engine: encoder.engine };
    // Several processes may fill one cache: each takes slides it can claim, a batch at a time.
    const board = new ClaimBoard(join(cache.dir, 'claims'), {
      run: `features ${cache.index.encoder.sha256.slice(0, 16)} ${cache.index.dtype}`,
      staleAfterMs: options.staleAfterMs,
    });
    board.checkRun();
    if (options.role === 'finish') {
      const named = pending
        .slice(0, 5)
        .map((slide) => `${slide} (${board.describe(slideFileName(slide)) ?? 'not started'})`)
        .join(', ');
      throw new DatasetError(
        cache.dir,
        `${pending.length} slides are not embedded yet: ${named}${pending.length > 5 ? ', ...' : ''}; run the workers again (the same \`gradelab slurm submit\`, or \`gradelab features\` with the same flags)`,
      );
    }
    const total = pending.reduce((n, s) => n + cache.tilesOf(s).length, 0);
    log.info(`embedding ${total} tiles of ${pending.length} slides with ${spec.onnx} (${encoder.dim} features, ${encoder.engine})`);
    const progress = (options.progress ?? silentProgress)('tiles');
    progress.start(total, 'features');
    let computed = 0;
    try {
      while (pending.length) {
        const mine: { slide: string; claim: Claim }[] = [];
        const waiting: string[] = [];
        let tiles = 0;
        for (const slide of pending) {
          // Finished by another process since the last look.
          if (cache.has(slide)) {
            progress.increment(cache.tilesOf(slide).length);
            continue;
          }
          const claim = tiles < CLAIM_BATCH_TILES ? board.tryClaim(slideFileName(slide)) : undefined;
          if (!claim) {
            waiting.push(slide);
            continue;
          }
          // Another process may have finished it between the look and the claim.
          if (cache.has(slide)) {
            claim.release();
            progress.increment(cache.tilesOf(slide).length);
          } else {
            mine.push({ slide, claim });
            tiles += cache.tilesOf(slide).length;
          }
        }
        try {
          if (mine.length)
            await embedSlides(
              cache,
              ds,
              encoder,
              mine.map((m) => m.slide),
              options.batchSize ?? 64,
              progress,
            );
          // A worker's log says which slides it did (a SLURM task's log is the record of its share).
          if (mine.length && options.role === 'worker') log.info(`embedded ${mine.map((m) => m.slide).join(', ')}`);
        } finally {
          for (const m of mine) m.claim.release();
        }
        computed += mine.length;
        pending = waiting;
        if (options.role === 'worker' && !mine.length) break;
        if (!mine.length && pending.some((slide) => !cache.has(slide))) await sleep(options.pollMs ?? 1000);
      }
    } finally {
      progress.stop();
    }
    board.removeIfEmpty();
    return { cache, computed, engine: encoder.engine };
  } finally {
    await encoder.close();
  }
}

/** Tiles one process claims at a time: enough for the loader to stay busy, few enough to share a cache's slides. */
const CLAIM_BATCH_TILES = 2048;

/** Embeds the tiles of `slides` in one loader pass (one worker decodes the next batch while ONNX Runtime embeds this one), slide by slide into the cache. */
async function embedSlides(
  cache: EmbeddingCache,
  ds: TileDataset,
  encoder: OnnxEncoder,
  slides: string[],
  batchSize: number,
  progress: ReturnType<ProgressFactory>,
): Promise<void> {
  const tiles = slides.flatMap((s) => cache.tilesOf(s));
  const loader = new TileLoader(ds, tiles, { batchSize, seed: 0, shuffle: false, workers: 1 });
  const d = encoder.dim;
  let si = 0;
  let buffer = new Float32Array(cache.tilesOf(slides[0]).length * d);
  let filled = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const y = await encoder.embed(batch.x);
      for (let i = 0; i < batch.tiles.length; i++) {
        buffer.set(y.subarray(i * d, (i + 1) * d), filled * d);
        filled++;
        if (filled * d === buffer.length) {
          await cache.write(slides[si], buffer);
          if (++si === slides.length) break;
          buffer = new Float32Array(cache.tilesOf(slides[si]).length * d);
          filled = 0;
        }
      }
      progress.increment(batch.tiles.length);
    }
  } finally {
    await loader.close();
  }
}
