import { transformFromSpec, type Transform } from '../augment/index.ts';
import { createRng, type RgbImage } from '../core/index.ts';
import { readDatasetTile, ShardReader, type TileDataset, type TileRow } from '../data/index.ts';
import { unitResult, type SuiteScorer, type SuiteUnit, type UnitResult, type UnitTiming } from './robustness.ts';

/** Decoded clean tiles held at once; above it the suite runs block by block. */
export const SUITE_BLOCK_BYTES = 512 * 2 ** 20;

export interface SuiteRole {
  role: string;
  scorer: SuiteScorer;
  /** Units this role still needs (the rest were done by an earlier, interrupted run). */
  pending: SuiteUnit[];
}

export interface SuiteRunOptions {
  resamples: number;
  seed: number;
  batchSize?: number;
  blockBytes?: number;
  /** Called as each unit of each role completes (append its result, log a tracked run). */
  onUnit?: (role: string, result: UnitResult) => Promise<void> | void;
  /** Called after each unit's block has been scored by every role that needed it. */
  onStep?: (unit: SuiteUnit, block: number, blocks: number) => void;
}

const key = (u: SuiteUnit) => `${u.condition}/${u.severity}`;

/** The tile-specific seed: a tile is perturbed the same way whichever run, shard or block reaches it. */
function tileRng(seed: number, unit: SuiteUnit, t: TileRow) {
  return createRng(`${seed}/${unit.condition}/${unit.severity}/${t.slideId}/${t.x}/${t.y}`);
}

async function decodeBlock(ds: TileDataset, tiles: readonly TileRow[]): Promise<RgbImage[]> {
  const reader = new ShardReader();
  try {
    return await Promise.all(tiles.map((t) => readDatasetTile(ds, t, reader)));
  } finally {
    await reader.close();
  }
}

/**
 * Runs suite units over test tiles for one or more models (the model and its baseline). Each clean tile
 * is read and decoded once per run, each perturbed tile is made once and scored by every model that
 * needs it, and tiles are processed in blocks that fit `blockBytes` so memory stays bounded whatever
 * the suite's size. A unit is complete, and reported through onUnit, when its last block is scored: with
 * one block (the usual case) that is right after the unit, so an interrupted run loses at most one unit.
 */
export async function runSuiteUnits(ds: TileDataset, tiles: readonly TileRow[], roles: SuiteRole[], options: SuiteRunOptions): Promise<void> {
  const bytesPerTile = ds.meta.tileSize * ds.meta.tileSize * 3;
  const perBlock = Math.max(1, Math.floor((options.blockBytes ?? SUITE_BLOCK_BYTES) / bytesPerTile));
  const blocks = Math.ceil(tiles.length / perBlock);
  const bs = options.batchSize ?? 32;
  const units = new Map<string, SuiteUnit>();
  for (const r of roles) for (const u of r.pending) units.set(key(u), u);
  if (!units.size) return;
  const transforms = new Map<string, Transform | undefined>([...units].map(([k, u]) => [k, u.transform ? transformFromSpec(u.transform, u.condition) : undefined]));
  type Acc = { probs: Float32Array; ood: Float64Array | undefined; timing: UnitTiming };
  const acc = new Map<string, Acc>();
  for (const r of roles) {
    const k = r.scorer.classes.length;
    for (const u of r.pending) acc.set(`${r.role}|${key(u)}`, { probs: new Float32Array(tiles.length * k), ood: r.scorer.slideOodFlags ? new Float64Array(tiles.length) : undefined, timing: { seconds: 0, readSeconds: 0, perturbSeconds: 0, inferSeconds: 0 } });
  }
  let readSeconds = 0;
  for (let b = 0; b < blocks; b++) {
    const lo = b * perBlock;
    const blockTiles = tiles.slice(lo, lo + perBlock);
    const t0 = performance.now();
    const clean = await decodeBlock(ds, blockTiles);
    readSeconds += (performance.now() - t0) / 1000;
    for (const [k, unit] of units) {
      const needed = roles.filter((r) => r.pending.some((u) => key(u) === k));
      const transform = transforms.get(k);
      const started = performance.now();
      let perturbMs = 0;
      const inferMs = new Map(needed.map((r) => [r.role, 0]));
      const perturb = (i: number) => {
        const t1 = performance.now();
        const images = transform ? clean.slice(i, i + bs).map((img, j) => transform.apply(img, tileRng(options.seed, unit, blockTiles[i + j]))) : clean.slice(i, i + bs);
        perturbMs += performance.now() - t1;
        return images;
      };
      // Pipelined: while the engine scores one batch (its own threads), the next is perturbed here.
      let next = perturb(0);
      for (let i = 0; i < blockTiles.length; i += bs) {
        const t1 = performance.now();
        const images = await Promise.all(next);
        perturbMs += performance.now() - t1;
        const scoring = Promise.all(needed.map(async (r) => {
          const t3 = performance.now();
          const out = await r.scorer.score(images);
          inferMs.set(r.role, inferMs.get(r.role)! + performance.now() - t3);
          return out;
        }));
        if (i + bs < blockTiles.length) next = perturb(i + bs);
        const outs = await scoring;
        needed.forEach((r, j) => {
          const a = acc.get(`${r.role}|${k}`)!;
          a.probs.set(outs[j].probs, (lo + i) * r.scorer.classes.length);
          if (a.ood && outs[j].oodScores) a.ood.set(outs[j].oodScores!, lo + i);
        });
      }
      const wall = (performance.now() - started) / 1000;
      for (const r of needed) {
        const a = acc.get(`${r.role}|${k}`)!;
        // Perturbation is shared by the roles (each is charged its share); it overlaps inference, so the
        // parts add up to more than the wall time.
        a.timing.perturbSeconds += perturbMs / 1000 / needed.length;
        a.timing.inferSeconds += inferMs.get(r.role)! / 1000;
        a.timing.seconds += wall / needed.length;
      }
      options.onStep?.(unit, b, blocks);
      if (b === blocks - 1) {
        for (const r of needed) {
          const a = acc.get(`${r.role}|${k}`)!;
          // Decoding is shared by every unit of the run; the first unit reported carries it.
          a.timing.readSeconds = readSeconds;
          a.timing.seconds += readSeconds;
          readSeconds = 0;
          await options.onUnit?.(r.role, unitResult(unit, tiles, r.scorer, a.probs, a.ood, a.timing, options));
          acc.delete(`${r.role}|${k}`);
        }
      }
    }
  }
}
