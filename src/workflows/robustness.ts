import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  checkSameInput,
  ConfigError,
  readModelMeta,
  requirePixelModel,
  silentProgress,
  writeFileAtomic,
  type ProgressFactory,
} from '../core/index.ts';
import { loadSplit, openDatasetForModel, shardUnits, spreadTilesPerSlide, tilesOfPartition, type Shard } from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import {
  appendUnitResult,
  loadSuite,
  readUnitResults,
  runSuiteUnits,
  SUITE_COPY,
  suiteUnits,
  summariseSuite,
  writeSuiteOutputs,
  type SuiteRole,
  type SuiteSummary,
  type UnitResult,
} from '../eval/index.ts';
import { hasOodBundle, loadOodBundle } from '../ood/index.ts';
import { FileStore, openStore, startRun } from '../track/index.ts';
import { modelScorer } from './modelScorer.ts';

export interface RobustnessOptions {
  /** A baseline model for corruption errors (mCE); it must take the same input. */
  baseline?: string;
  /** The I-th of N shares of the conditions (robustness merge joins them). */
  shard?: Shard;
  /** Test tiles per slide (default: the suite's tilesPerSlide). */
  tilesPerSlide?: number;
  split?: 'train' | 'val' | 'test' | 'all';
  fold?: number;
  resamples?: number;
  seed?: number;
  trackingDir?: string;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

/**
 * Runs a robustness suite: every condition and severity perturbs the test tiles (seeded), the model (and
 * the baseline) score them, each unit's result is appended as it finishes (an interrupted suite resumes)
 * and tracked as a child run. Without a shard, writes the summary (criteria, mCE) into `out` and returns
 * it; a shard returns undefined and leaves the joining to mergeRobustnessShards.
 */
export async function runRobustnessSuite(
  modelDir: string,
  dataDir: string,
  suitePath: string,
  out: string,
  options: RobustnessOptions = {},
): Promise<SuiteSummary | undefined> {
  const { split = 'test', fold = 0, shard } = options;
  const { suite: loaded, criteria } = loadSuite(suitePath);
  const ds = await openDatasetForModel(dataDir, modelDir);
  requirePixelModel(modelDir, readModelMeta(modelDir), 'a robustness suite');
  if (options.baseline)
    checkSameInput({ dir: modelDir, meta: readModelMeta(modelDir) }, { dir: options.baseline, meta: readModelMeta(options.baseline) });
  const partition = split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(dataDir), split, fold);
  const perSlide = options.tilesPerSlide ?? loaded.tilesPerSlide;
  if (!Number.isInteger(perSlide) || perSlide < 1) throw new ConfigError(`--tiles-per-slide must be a positive integer, got ${perSlide}`);
  const suite = { ...loaded, tilesPerSlide: perSlide };
  const tiles = spreadTilesPerSlide(
    partition.filter((t) => !t.anomaly && t.grade !== undefined),
    perSlide,
  );
  if (!tiles.length)
    throw new ConfigError(`${dataDir}: no labelled ${split === 'all' ? '' : `${split} `}tiles${split === 'all' ? '' : ` in fold ${fold}`}`);
  const models: [string, string][] = [
    ['model', modelDir],
    ...(options.baseline ? [['baseline', options.baseline] as [string, string]] : []),
  ];
  // Every model directory and its detectors are checked before anything is written.
  for (const [, dir] of models) {
    readModelMeta(dir);
    if (hasOodBundle(dir)) loadOodBundle(dir);
  }
  // The suite travels with its results, so merging shards needs no --suite and cannot mix suites; with
  // another tile count the copy records the number the suite really ran with.
  await mkdir(out, { recursive: true });
  const suiteText = readFileSync(suitePath, 'utf8');
  await writeFileAtomic(
    join(out, SUITE_COPY),
    perSlide === loaded.tilesPerSlide ? suiteText : stringifyYaml({ ...parseYaml(suiteText), tilesPerSlide: perSlide }),
  );
  const mine = shardUnits(
    [{ condition: 'clean', severity: 0, transform: undefined as Record<string, unknown> | undefined }, ...suiteUnits(suite)],
    shard,
  );
  const meta = readModelMeta(modelDir);
  const store = openStore({ trackingDir: options.trackingDir });
  const parent = await startRun('robustness', `${suite.name}${shard ? ` shard ${shard.index}/${shard.count}` : ''}`, {
    trackingDir: options.trackingDir,
    tags: { 'gradelab.suite': suite.name, ...(meta.runId && store instanceof FileStore ? { 'mlflow.parentRunId': meta.runId } : {}) },
  });
  const progress = (options.progress ?? silentProgress)('conditions', ' | {name}');
  const resultsPath = (role: string) => join(out, `${role}${shard ? `.shard-${shard.index}-of-${shard.count}` : ''}.jsonl`);
  const roles: (SuiteRole & { dispose(): Promise<void> | void })[] = [];
  try {
    for (const [role, dir] of models) {
      const done = new Set(readUnitResults(resultsPath(role)).map((r) => `${r.condition}/${r.severity}`));
      const scorer = await modelScorer(dir, options.engine);
      roles.push({ role, scorer, pending: mine.filter((u) => !done.has(`${u.condition}/${u.severity}`)), dispose: scorer.dispose });
    }
    const pending = new Set(roles.flatMap((r) => r.pending.map((u) => `${u.condition}/${u.severity}`)));
    progress.start(mine.length, `suite ${suite.name}`);
    progress.increment(mine.length - pending.size);
    await runSuiteUnits(ds, tiles, roles, {
      resamples: options.resamples ?? 300,
      seed: options.seed ?? 1,
      onStep: (unit, block, blocks) => {
        progress.update({
          name: `${unit.condition}${unit.severity ? ` ${unit.severity}` : ''}${blocks > 1 ? ` (block ${block + 1}/${blocks})` : ''}`,
        });
        if (block === blocks - 1) progress.increment();
      },
      onUnit: async (role, r) => {
        appendUnitResult(resultsPath(role), r);
        const child = await parent.startChild(`${role}: ${r.condition}${r.severity ? ` severity ${r.severity}` : ''}`, {
          'gradelab.condition': r.condition,
          'gradelab.severity': String(r.severity),
          'gradelab.role': role,
        });
        await child.logMetrics({
          qwk: r.qwk.value,
          accuracy: r.accuracy.value,
          ece: r.ece,
          ...(r.oodFlagRate !== null ? { ood_flag_rate: r.oodFlagRate } : {}),
        });
        await child.end();
      },
    });
  } catch (err) {
    await parent.end('FAILED');
    throw err;
  } finally {
    progress.stop();
    for (const r of roles) await r.dispose();
  }
  if (shard) {
    await parent.end();
    return undefined;
  }
  const summary = summariseSuite(
    suite,
    criteria,
    readUnitResults(join(out, 'model.jsonl')),
    options.baseline ? readUnitResults(join(out, 'baseline.jsonl')) : undefined,
  );
  await writeSuiteOutputs(out, summary);
  // Relative to the output folder, as every file a report quotes.
  const rel = (p: string) => relative(resolve(out), resolve(p)).split(sep).join('/') || '.';
  const record = {
    suite: rel(suitePath),
    model: rel(modelDir),
    baseline: options.baseline ? rel(options.baseline) : null,
    data: rel(dataDir),
    fold,
    tiles: tiles.length,
  };
  await writeFileAtomic(join(out, 'suite.json'), JSON.stringify(record, null, 2));
  await parent.logMetrics({
    clean_qwk: summary.clean.qwk.value,
    criteria_passed: summary.criteria.filter((c) => c.pass).length,
    criteria_failed: summary.criteria.filter((c) => !c.pass).length,
  });
  await parent.logArtifact(join(out, 'summary.md'));
  await parent.end();
  return summary;
}

/** Joins the unit results of --shard runs into the summary an unsharded run writes (same suite, checked). */
export async function mergeRobustnessShards(dirs: readonly string[], out: string, suitePath?: string): Promise<SuiteSummary> {
  for (const d of dirs) if (!existsSync(d)) throw new ConfigError(`${d}: shard folder not found`);
  const copies = dirs.map((d) => join(d, SUITE_COPY)).filter((p) => existsSync(p));
  if (!suitePath && !copies.length)
    throw new ConfigError(`${dirs[0]}: no ${SUITE_COPY} in the shard folders (made by an older gradelab); give --suite`);
  if (!suitePath && new Set(copies.map((p) => readFileSync(p, 'utf8'))).size > 1)
    throw new ConfigError(`the shard folders ran different suites (their ${SUITE_COPY} differ)`);
  const { suite, criteria } = loadSuite(suitePath ?? copies[0]);
  const collect = (role: string) => {
    const found: UnitResult[] = [];
    for (const d of dirs)
      for (const f of readdirSync(d))
        if (f.startsWith(`${role}.shard-`) && f.endsWith('.jsonl')) found.push(...readUnitResults(join(d, f)));
    return found;
  };
  const baseline = collect('baseline');
  await mkdir(out, { recursive: true });
  const summary = summariseSuite(suite, criteria, collect('model'), baseline.length ? baseline : undefined);
  await writeSuiteOutputs(out, summary);
  return summary;
}
