import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyAffineHead,
  gradeClasses,
  headProbabilities,
  log,
  modelFile,
  sha256Text,
  writeFileAtomic,
  writeAffineHead,
  type AffineHead,
  type ModelMeta,
} from '../core/index.ts';
import type { EmbeddingCache, TileRow } from '../data/index.ts';
import { bootstrapByPatient, tQuantile, writePredictions, type Estimate } from '../eval/index.ts';
import { poolSlides, quadraticWeightedKappa, type PredictionRow } from '../metrics/index.ts';
import { fitHeadOnEmbeddings, gradingFromValidation, type EmbeddingSet, type TrainConfig } from '../train/index.ts';

export interface SeedRun {
  seed: number;
  bestEpoch: number;
  valQwk: number | null;
  testQwk: number | null;
  /** SHA-256 of the head's weights and bias: which head each row is about (seeds must give different ones). */
  headSha256: string;
}

/** Mean, sample SD and the t interval of the mean across seeds (how much a rerun would move it). */
export interface SeedSpread {
  mean: number;
  sd: number;
  min: number;
  max: number;
  ci95: [number, number];
}

export function seedSpread(values: readonly number[]): SeedSpread {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? tQuantile(0.975, n - 1) * (sd / Math.sqrt(n)) : 0;
  return { mean, sd, min: Math.min(...values), max: Math.max(...values), ci95: [mean - half, mean + half] };
}

/** A pattern head's grading, chosen on the validation embeddings (undefined for the other heads). */
export function headGrading(head: AffineHead, config: TrainConfig, val: EmbeddingSet): ModelMeta['patternGrading'] {
  if (config.model.head !== 'patterns') return undefined;
  const classes = gradeClasses(config.task);
  const logits = applyAffineHead(head, val.features, val.tiles.length);
  const probs = headProbabilities(logits, val.tiles.length, 'patterns', classes.length);
  return gradingFromValidation({ tiles: val.tiles, k: classes.length, probs, head: 'patterns' }, classes, config.data.fold);
}

/** Slide grades of a head on cached embeddings, by the one pooling rule. */
function slideRows(
  head: AffineHead,
  config: TrainConfig,
  cache: EmbeddingCache,
  tiles: TileRow[],
  grading: ModelMeta['patternGrading'],
): PredictionRow[] {
  const classes = gradeClasses(config.task);
  const logits = applyAffineHead(head, cache.read(tiles), tiles.length);
  const probs = headProbabilities(logits, tiles.length, config.model.head, classes.length);
  return poolSlides({ tiles, k: classes.length, probs, head: config.model.head, grading }, classes, 'mean').filter(
    (r) => r.label !== undefined,
  );
}

const qwkOf = (rows: PredictionRow[], k: number) =>
  quadraticWeightedKappa(
    rows.map((r) => r.label!),
    rows.map((r) => r.pred),
    k,
  );

/**
 * eva-style multi-seed evaluation of a head on cached embeddings: the same data, `train.seeds` seeds
 * (config.seed, config.seed + 1, ...), each head's validation and test-partition slide QWK, their
 * spread across seeds beside the patient-bootstrap interval of the first seed's test QWK (two different
 * uncertainties: a rerun's and the cases'). The model keeps the first seed's head. Writes seeds.json, and
 * per seed seeds/seed-S/head.json with the slide predictions of the test partition (test-predictions.csv).
 */
export async function multiSeedHeads(
  config: TrainConfig,
  data: { trainSet: EmbeddingSet; valSet: EmbeddingSet; test: TileRow[] },
  cache: EmbeddingCache,
  first: { head: AffineHead; bestEpoch: number; bestQwk: number | null; grading: ModelMeta['patternGrading'] },
  out: string,
): Promise<string> {
  const k = gradeClasses(config.task).length;
  const { trainSet, valSet } = data;
  const test = data.test.length ? data.test : undefined;
  const runs: SeedRun[] = [];
  let firstTest: PredictionRow[] = [];
  for (let i = 0; i < config.train.seeds; i++) {
    const seed = config.seed + i;
    const fit = i === 0 ? first : await fitHeadOnEmbeddings({ ...config, seed }, trainSet, valSet, cache.dim);
    const grading = i === 0 ? first.grading : headGrading(fit.head, config, valSet);
    const rows = test ? slideRows(fit.head, config, cache, test, grading) : [];
    if (i === 0) firstTest = rows;
    // Each seed's head and its test-partition slide predictions: `compare` takes them as an arm's repeats.
    const dir = join(out, 'seeds', `seed-${seed}`);
    await mkdir(dir, { recursive: true });
    await writeAffineHead(dir, fit.head);
    if (rows.length) await writePredictions(join(dir, 'test-predictions.csv'), rows, k);
    runs.push({
      seed,
      bestEpoch: fit.bestEpoch,
      valQwk: fit.bestQwk,
      testQwk: rows.length ? qwkOf(rows, k) : null,
      headSha256: sha256Text(JSON.stringify([Array.from(fit.head.weights), Array.from(fit.head.bias)])),
    });
    log.info(`seed ${seed}: val QWK ${fit.bestQwk?.toFixed(3) ?? 'n/a'}${rows.length ? `, test QWK ${runs[i].testQwk!.toFixed(3)}` : ''}`);
  }
  const testValues = runs.flatMap((r) => (r.testQwk === null ? [] : [r.testQwk]));
  const bootstrap: Estimate | null = firstTest.length
    ? bootstrapByPatient(
        firstTest.map((r) => r.patientId),
        (idx) =>
          qwkOf(
            Array.from(idx, (i) => firstTest[i]),
            k,
          ),
        { resamples: 1000, seed: config.seed },
      )
    : null;
  const summary = {
    format: 'gradelab-seeds/1',
    seeds: runs.length,
    runs,
    val: seedSpread(runs.flatMap((r) => (r.valQwk === null ? [] : [r.valQwk]))),
    test: testValues.length ? seedSpread(testValues) : null,
    testSlides: firstTest.length,
    firstSeedTestBootstrap: bootstrap,
  };
  await writeFileAtomic(modelFile(out, 'seeds'), `${JSON.stringify(summary, null, 2)}\n`);
  const f = (s: SeedSpread) =>
    `${s.mean.toFixed(3)} +/- ${s.sd.toFixed(3)} (across-seed 95% CI ${s.ci95[0].toFixed(3)} to ${s.ci95[1].toFixed(3)})`;
  return `${runs.length} seeds: val QWK ${f(summary.val)}${summary.test ? `, test QWK ${f(summary.test)} on ${firstTest.length} slides` : ''}`;
}
