import { availableParallelism } from 'node:os';
import { transformFromSpec } from '../augment/index.ts';
import type { RgbImage } from '../core/index.ts';
import { Perturber } from './perturber.ts';
import { readDatasetTile, TileReader, type TileDataset, type TileRow } from '../data/index.ts';
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
  /** Perturbation worker threads (0: on the calling thread; default: see defaultWorkers). */
  workers?: number;
  /** Called after each unit's block has been scored by every role that needed it. */
  onStep?: (unit: SuiteUnit, block: number, blocks: number) => void;
}

const key = (u: SuiteUnit) => `${u.condition}/${u.severity}`;

/** The tile-specific seed: a tile is perturbed the same way whichever run, shard, block or thread reaches it. */
function tileSeed(seed: number, unit: SuiteUnit, t: TileRow): string {
  return `${seed}/${unit.condition}/${unit.severity}/${t.slideId}/${t.x}/${t.y}`;
}

async function decodeBlock(ds: TileDataset, tiles: readonly TileRow[]): Promise<RgbImage[]> {
  const reader = new TileReader();
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
export async function runSuiteUnits(
  ds: TileDataset,
  tiles: readonly TileRow[],
  roles: SuiteRole[],
  options: SuiteRunOptions,
): Promise<void> {
  const units = new Map<string, SuiteUnit>();
  for (const r of roles) for (const u of r.pending) units.set(key(u), u);
  if (!units.size) return;
  // Transforms are built once here so a bad spec fails before any work, whichever thread runs them.
  for (const u of units.values()) if (u.transform) transformFromSpec(u.transform, u.condition);
  const perturber = new Perturber(options.workers ?? defaultWorkers(units.size * tiles.length));
  try {
    await runBlocks(ds, tiles, roles, units, perturber, options);
  } finally {
    await perturber.close();
  }
}

/**
 * Perturbation threads for a run of this many tile perturbations: a worker costs about a second to start
 * (tsx, the augmentation modules, WebAssembly), which pays off only when there is more than a few
 * seconds of perturbation to share out (about 0.1-2 ms a tile).
 */
export function defaultWorkers(tilePerturbations: number): number {
  return tilePerturbations < 20_000 ? 0 : Math.max(1, availableParallelism() - 1);
}

type Acc = { probs: Float32Array; ood: Float64Array | undefined; timing: UnitTiming };

async function runBlocks(
  ds: TileDataset,
  tiles: readonly TileRow[],
  roles: SuiteRole[],
  units: Map<string, SuiteUnit>,
  perturber: Perturber,
  options: SuiteRunOptions,
): Promise<void> {
  const bytesPerTile = ds.meta.tileSize * ds.meta.tileSize * 3;
  const perBlock = Math.max(1, Math.floor((options.blockBytes ?? SUITE_BLOCK_BYTES) / bytesPerTile));
  const blocks = Math.ceil(tiles.length / perBlock);
  const bs = options.batchSize ?? 32;
  const acc = new Map<string, Acc>();
  for (const r of roles) {
    const k = r.scorer.classes.length;
    for (const u of r.pending)
      acc.set(`${r.role}|${key(u)}`, {
        probs: new Float32Array(tiles.length * k),
        ood: r.scorer.slideOodFlags ? new Float64Array(tiles.length) : undefined,
        timing: { seconds: 0, readSeconds: 0, perturbSeconds: 0, inferSeconds: 0 },
      });
  }
  let readSeconds = 0;
  for (let b = 0; b < blocks; b++) {
    const lo = b * perBlock;
    const blockTiles = tiles.slice(lo, lo + perBlock);
    const t0 = performance.now();
    const clean = await decodeBlock(ds, blockTiles);
    readSeconds += (performance.now() - t0) / 1000;
    // Every (unit, batch) of the block in order; perturbations run ahead in worker threads, across unit
    // boundaries, while the main thread scores (ONNX Runtime's run blocks it, so overlap needs threads).
    const jobs = [...units].flatMap(([k, unit]) =>
      Array.from({ length: Math.ceil(blockTiles.length / bs) }, (_, j) => ({ k, unit, i: j * bs })),
    );
    const perturb = (job: (typeof jobs)[number]): Promise<RgbImage[]> => {
      const images = clean.slice(job.i, job.i + bs);
      if (!job.unit.transform) return Promise.resolve(images);
      return perturber.run(
        images,
        job.unit,
        blockTiles.slice(job.i, job.i + bs).map((t) => tileSeed(options.seed, job.unit, t)),
      );
    };
    const ahead = Math.max(2, perturber.threads + 1);
    const queue = jobs.slice(0, ahead).map(perturb);
    let unitStarted = performance.now();
    const inferMs = new Map<string, number>();
    for (let j = 0; j < jobs.length; j++) {
      const { k, unit, i } = jobs[j];
      const needed = roles.filter((r) => r.pending.some((u) => key(u) === k));
      const images = await queue.shift()!;
      if (j + ahead < jobs.length) queue.push(perturb(jobs[j + ahead]));
      for (const r of needed) {
        const t0 = performance.now();
        const out = await r.scorer.score(images);
        inferMs.set(r.role, (inferMs.get(r.role) ?? 0) + performance.now() - t0);
        const a = acc.get(`${r.role}|${k}`)!;
        a.probs.set(out.probs, (lo + i) * r.scorer.classes.length);
        if (a.ood && out.oodScores) a.ood.set(out.oodScores, lo + i);
      }
      if (jobs[j + 1]?.k === k) continue;
      // The unit's last batch of this block: account its time and, after the last block, report it.
      const wall = (performance.now() - unitStarted) / 1000;
      const perturbMs = perturber.takeMs();
      unitStarted = performance.now();
      for (const r of needed) {
        const a = acc.get(`${r.role}|${k}`)!;
        // Perturbation is shared by the roles (each is charged its share) and runs in other threads,
        // so the parts add up to more than the wall time.
        a.timing.perturbSeconds += perturbMs / 1000 / needed.length;
        a.timing.inferSeconds += (inferMs.get(r.role) ?? 0) / 1000;
        a.timing.seconds += wall / needed.length;
      }
      inferMs.clear();
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
