import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, loadYamlFile, modelFile, type ModelMeta, readModelMeta } from '../core/index.ts';
import {
  readAuditFile,
  readCompareFile,
  readMrmcFile,
  readPrecisionFile,
  readRepresentationFile,
  readMetricsFile,
  readOodFile,
  readPredictions,
  readSuiteResults,
  type AuditFile,
  type CompareFile,
  type MetricsFile,
  type MrmcFile,
  type PrecisionFile,
  type RepresentationFile,
  type OodFile,
  type Predictions,
  type SuiteResultsFile,
} from '../eval/index.ts';
import { type IntendedUse, loadIntendedUse } from './document.ts';
import { FileStore, openStore } from '../track/index.ts';
import { readViewerExport } from '../view/index.ts';

/** Everything the report is written from, read and checked before anything is written. */
export interface ReportInputs {
  modelDir: string;
  meta: ModelMeta;
  config?: ExperimentSummary;
  use: IntendedUse;
  evalDir?: string;
  oodDir?: string;
  outDir: string;
  metrics?: MetricsFile;
  ood?: OodFile;
  audit?: AuditFile;
  suites: { dir: string; r?: SuiteResultsFile }[];
  comparisons: { dir: string; c: CompareFile }[];
  readerStudies: { dir: string; m: MrmcFile }[];
  precision: { dir: string; p: PrecisionFile }[];
  representation: { dir: string; r: RepresentationFile }[];
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
  mrmc?: string[];
  precision?: string[];
  representation?: string[];
  viewer?: string[];
  intendedUse?: string;
  trackingDir?: string;
}

/** What the report reads of a model's saved experiment (config.yaml): its name, data and training settings. */
const experimentSummarySchema = z
  .object({
    name: z.string().optional(),
    data: z.object({ dataset: z.string().optional(), fold: z.number().optional() }).loose().optional(),
    model: z.object({ init: z.string().optional() }).loose().optional(),
    train: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type ExperimentSummary = z.infer<typeof experimentSummarySchema>;

/** A results file in `dir` when --flag names the folder: its contract checked, or one line saying what is missing. */
function required<T>(flag: string, dir: string | undefined, file: string, read: (d: string) => T): T | undefined {
  if (!dir) return undefined;
  if (!existsSync(join(dir, file))) throw new ConfigError(`${flag} ${dir}: no ${file} there`);
  return read(dir);
}

function resolveModelDir(run: string, trackingDir?: string): string {
  if (existsSync(modelFile(run, 'meta'))) return run;
  const store = openStore({ trackingDir });
  if (store instanceof FileStore) {
    const r = store.listRuns().find((x) => x.runId.startsWith(run));
    if (r?.tags['gradelab.out_dir'] && existsSync(modelFile(r.tags['gradelab.out_dir'], 'meta'))) return r.tags['gradelab.out_dir'];
  }
  throw new ConfigError(`--run ${run}: not a model directory, nor a training run with one`);
}

export function loadReportInputs(a: ReportArgs): ReportInputs {
  const modelDir = resolveModelDir(a.run, a.trackingDir);
  const meta = readModelMeta(modelDir);
  const configPath = modelFile(modelDir, 'config');
  const config = existsSync(configPath) ? loadYamlFile(configPath, experimentSummarySchema, 'experiment file').value : undefined;
  const use = loadIntendedUse(a.intendedUse);
  const metrics = required('--eval', a.eval, 'metrics.json', readMetricsFile);
  const ood = required('--ood', a.ood, 'ood.json', readOodFile);
  const audit = required('--audit', a.audit, 'audit.json', readAuditFile);
  // A suite without results is shown as MISSING in the report; a broken results file is an error.
  const suites = (a.robustness ?? []).map((d) => ({ dir: d, r: existsSync(join(d, 'results.json')) ? readSuiteResults(d) : undefined }));
  const comparisons = (a.compare ?? []).map((d) => ({ dir: d, c: required('--compare', d, 'compare.json', readCompareFile)! }));
  const readerStudies = (a.mrmc ?? []).map((d) => ({ dir: d, m: required('--mrmc', d, 'mrmc.json', readMrmcFile)! }));
  const precision = (a.precision ?? []).map((d) => ({ dir: d, p: required('--precision', d, 'precision.json', readPrecisionFile)! }));
  const representation = (a.representation ?? []).map((d) => ({
    dir: d,
    r: required('--representation', d, 'representation.json', readRepresentationFile)!,
  }));
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
    readerStudies,
    precision,
    representation,
    predictions,
    viewers,
  };
}
