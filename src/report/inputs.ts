import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, type ModelMeta, readModelMeta } from '../core/index.ts';
import { type Comparison, type Predictions, readPredictions } from '../eval/index.ts';
import { type IntendedUse, loadIntendedUse, readJsonIf } from './document.ts';
import { FileStore, openStore } from '../track/index.ts';
import { readViewerExport } from '../view/index.ts';

/** Everything the report is written from, read and checked before anything is written. */
export interface ReportInputs {
  modelDir: string;
  meta: ModelMeta;
  config: any;
  use: IntendedUse;
  evalDir?: string;
  oodDir?: string;
  outDir: string;
  metrics: any;
  ood: any;
  audit: any;
  suites: { dir: string; r: any }[];
  comparisons: { dir: string; c: Comparison }[];
  predictions?: Predictions;
  viewers: { page: string; slideIds: string[] }[];
}

export interface ReportArgs {
  run: string;
  out: string;
  eval?: string;
  ood?: string;
  audit?: string;
  robustness?: string[];
  compare?: string[];
  viewer?: string[];
  intendedUse?: string;
  trackingDir?: string;
}

function resolveModelDir(run: string, trackingDir?: string): string {
  if (existsSync(join(run, 'gradelab.json'))) return run;
  const store = openStore({ trackingDir });
  if (store instanceof FileStore) {
    const r = store.listRuns().find((x) => x.runId.startsWith(run));
    if (r?.tags['gradelab.out_dir'] && existsSync(join(r.tags['gradelab.out_dir'], 'gradelab.json'))) return r.tags['gradelab.out_dir'];
  }
  throw new ConfigError(`--run ${run}: not a model directory, nor a training run with one`);
}

export function loadReportInputs(a: ReportArgs): ReportInputs {
  const modelDir = resolveModelDir(a.run, a.trackingDir);
  const meta = readModelMeta(modelDir);
  const config = existsSync(join(modelDir, 'config.yaml')) ? parseYaml(readFileSync(join(modelDir, 'config.yaml'), 'utf8')) : undefined;
  const use = loadIntendedUse(a.intendedUse);
  const metrics = readJsonIf(a.eval && join(a.eval, 'metrics.json'));
  const ood = readJsonIf(a.ood && join(a.ood, 'ood.json'));
  const audit = readJsonIf(a.audit && join(a.audit, 'audit.json'));
  const suites = (a.robustness ?? []).map((d) => ({ dir: d, r: readJsonIf(join(d, 'results.json')) }));
  const comparisons = (a.compare ?? []).map((d) => {
    const c = readJsonIf(join(d, 'compare.json')) as Comparison | undefined;
    if (!c) throw new ConfigError(`--compare ${d}: no compare.json there (run gradelab compare)`);
    return { dir: d, c };
  });
  for (const [flag, dir, v] of [
    ['--eval', a.eval, metrics],
    ['--ood', a.ood, ood],
    ['--audit', a.audit, audit],
  ] as const) {
    if (dir && !v) throw new ConfigError(`${flag} ${dir}: no results there`);
  }
  const viewers = (a.viewer ?? []).map((d) => readViewerExport(d));
  const predictionsCsv = a.eval && join(a.eval, 'predictions.csv');
  const predictions = predictionsCsv && existsSync(predictionsCsv) ? readPredictions(predictionsCsv) : undefined;
  return {
    modelDir,
    meta,
    config,
    use,
    evalDir: a.eval,
    oodDir: a.ood,
    outDir: a.out,
    metrics,
    ood,
    audit,
    suites,
    comparisons,
    predictions,
    viewers,
  };
}
