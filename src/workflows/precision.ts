import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadScannerProfile, simulateScanner, type ScannerProfile } from '../augment/index.ts';
import {
  checkWritable,
  ConfigError,
  createRng,
  groupBy,
  readModelMeta,
  requirePixelModel,
  silentProgress,
  writeFileAtomic,
  type ProgressFactory,
} from '../core/index.ts';
import {
  loadSplit,
  openDatasetForModel,
  readDatasetTile,
  spreadTilesPerSlide,
  TileReader,
  tilesOfPartition,
  type Partition,
} from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { fmtEstimate, precisionReport, type PrecisionReport, type RescannedSlide } from '../eval/index.ts';
import { poolTileProbs } from '../metrics/index.ts';
import { modelScorer } from './modelScorer.ts';

export interface PrecisionOptions {
  /** Repeatability: this many rescans through one scanner profile (fresh acquisition noise each). */
  rescans?: number;
  scanner?: string;
  /** Reproducibility: one scan through each of these profiles. */
  scanners?: string[];
  split?: Partition | 'all';
  fold?: number;
  /** Tiles per slide scored under every acquisition (spread over the slide); default all. */
  tilesPerSlide?: number;
  resamples?: number;
  seed?: number;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

const BATCH = 64;

/** The acquisitions a precision study compares: names, profiles, and the seed of each one's noise. */
function acquisitionsOf(o: PrecisionOptions): {
  kind: PrecisionReport['kind'];
  list: { name: string; profile: ScannerProfile; seed: string }[];
} {
  if ((o.rescans !== undefined || o.scanner !== undefined) === (o.scanners !== undefined))
    throw new ConfigError('give --rescans K --scanner S (repeatability) or --scanners S1,S2,... (reproducibility)');
  if (o.scanners) {
    if (o.scanners.length < 2 || new Set(o.scanners).size !== o.scanners.length)
      throw new ConfigError(`--scanners takes two or more distinct profiles, got ${o.scanners.join(',')}`);
    return { kind: 'reproducibility', list: o.scanners.map((s) => ({ name: s, profile: loadScannerProfile(s), seed: s })) };
  }
  const k = o.rescans ?? 3;
  if (!Number.isInteger(k) || k < 2) throw new ConfigError(`--rescans must be an integer of at least 2, got ${k}`);
  if (!o.scanner) throw new ConfigError('--rescans needs --scanner PROFILE (a shipped name or a YAML path)');
  const profile = loadScannerProfile(o.scanner);
  return {
    kind: 'repeatability',
    list: Array.from({ length: k }, (_, r) => ({ name: `${o.scanner} #${r + 1}`, profile, seed: `rescan-${r + 1}` })),
  };
}

/**
 * A precision study of a model's slide grades: every slide of the partition re-acquired through the
 * scanner simulator, K times through one profile with fresh acquisition noise (repeatability), or once
 * through each named profile (reproducibility); the same tiles, the same model, the one pooling rule.
 * Writes precision.json and precision.md. An acquisition with no randomness (a profile without noise or
 * illumination jitter) gives identical rescans and agreement exactly 1.
 */
export async function precisionStudy(
  modelDir: string,
  dataDir: string,
  out: string,
  options: PrecisionOptions = {},
): Promise<PrecisionReport> {
  const { split = 'test', fold = 0, resamples = 1000, seed = 1 } = options;
  const { kind, list } = acquisitionsOf(options);
  if (options.tilesPerSlide !== undefined && !(Number.isInteger(options.tilesPerSlide) && options.tilesPerSlide > 0))
    throw new ConfigError(`--tiles-per-slide must be a positive integer, got ${options.tilesPerSlide}`);
  const meta = readModelMeta(modelDir);
  requirePixelModel(modelDir, meta, 'a precision study');
  checkWritable(out, '--out');
  const ds = await openDatasetForModel(dataDir, modelDir);
  const partition = split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(dataDir), split, fold);
  // Anomalous slides are not the tissue the model grades: their grade's precision means nothing.
  const scoped = partition.filter((t) => !t.anomaly);
  const tiles = options.tilesPerSlide ? spreadTilesPerSlide(scoped, options.tilesPerSlide) : scoped;
  const bySlide = groupBy(
    tiles,
    (t) => t.slideId,
    (_, i) => i,
  );
  if (bySlide.size < 2)
    throw new ConfigError(`${dataDir}: ${bySlide.size} slide(s) in the ${split} partition; a precision study needs at least 2`);
  const scorer = await modelScorer(modelDir, options.engine);
  const reader = new TileReader();
  const k = meta.classes.length;
  const grades = new Map<string, number[]>([...bySlide.keys()].map((s) => [s, []]));
  const progress = (options.progress ?? silentProgress)('tiles');
  progress.start(tiles.length * list.length, kind);
  try {
    const probs = list.map(() => new Float32Array(tiles.length * k));
    // Each tile is read once (from a slide, for a coordinates-only dataset) and acquired every way.
    for (let i = 0; i < tiles.length; i += BATCH) {
      const batch = tiles.slice(i, i + BATCH);
      const read = await Promise.all(batch.map((t) => readDatasetTile(ds, t, reader)));
      for (const [a, acq] of list.entries()) {
        const images = await Promise.all(
          read.map((img, j) =>
            simulateScanner(img, acq.profile, ds.meta.mpp, createRng(`${seed}:${acq.seed}:${batch[j].index}`), {
              rescan: kind === 'repeatability',
            }),
          ),
        );
        probs[a].set((await scorer.score(images)).probs, i * k);
        progress.increment(batch.length);
      }
    }
    for (const p of probs)
      for (const [slide, idx] of bySlide)
        grades
          .get(slide)!
          .push(
            poolTileProbs(
              idx.length,
              k,
              (j) => p.subarray(idx[j] * k, (idx[j] + 1) * k),
              meta.head,
              'mean',
              undefined,
              meta.patternGrading,
            )!.pred,
          );
  } finally {
    progress.stop();
    await reader.close();
    await scorer.dispose();
  }
  const slides: RescannedSlide[] = [...bySlide].map(([slideId, idx]) => ({
    slideId,
    patientId: tiles[idx[0]].patientId,
    grades: grades.get(slideId)!,
  }));
  const report = precisionReport(
    slides,
    list.map((a) => a.name),
    { kind, task: meta.task, k, resamples, seed },
  );
  await mkdir(out, { recursive: true });
  await writeFileAtomic(
    join(out, 'precision.json'),
    `${JSON.stringify({ format: 'gradelab-precision/1', split, fold, tiles: tiles.length, ...report, perSlide: slides }, null, 2)}\n`,
  );
  await writeFileAtomic(join(out, 'precision.md'), precisionMarkdown(report, tiles.length));
  return report;
}

function precisionMarkdown(r: PrecisionReport, tiles: number): string {
  return `# ${r.kind === 'repeatability' ? 'Repeatability' : 'Reproducibility'} of slide grades

${r.slides} slides of ${r.patients} patients (${tiles} tiles), each acquired ${r.acquisitions.length} times: ${r.acquisitions.join(', ')}.
95% CIs from a patient bootstrap.

| statistic | value (95% CI) |
|---|---|
| graded identically under every acquisition | ${fmtEstimate(r.identical)} |
| Fleiss' kappa | ${fmtEstimate(r.fleiss)} |
| mean pairwise kappa | ${fmtEstimate(r.pairwiseKappa)} |
| mean absolute grade difference | ${fmtEstimate(r.meanAbsoluteDifference)} |
${r.flips.map((f) => `| flips across ${f.cutoff} | ${fmtEstimate(f.rate)} |`).join('\n')}

| acquisitions | identical | kappa |
|---|---|---|
${r.pairs.map((p) => `| ${p.a} vs ${p.b} | ${p.identical.toFixed(3)} | ${p.kappa.toFixed(3)} |`).join('\n')}
`;
}
