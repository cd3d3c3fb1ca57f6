import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import { log, readModelMeta } from '../core/index.ts';
import { FileStore, openStore, startRun, type Tracker } from '../track/index.ts';

/** --tracking-dir and --track: where a command's run is recorded, and whether at all. */
export function trackingFlags<T>(c: Argv<T>) {
  return c
    .option('tracking-dir', { type: 'string', describe: 'MLflow file store (default ./mlruns, or MLFLOW_TRACKING_URI)' })
    .option('track', {
      type: 'boolean',
      default: true,
      describe: "record this command as a run under the model's training run (--no-track: not at all)",
    });
}

export interface TrackedRunOptions {
  /** The command's name, and the run's name (e.g. "eval demo-stain-aug"). */
  kind: string;
  name: string;
  /** The model the work applies to: the run becomes a child of its training run. */
  modelDir?: string;
  trackingDir?: string;
  params?: Record<string, string | number | boolean | undefined>;
  /** False: do the work without recording a run (--no-track). */
  track?: boolean;
}

/**
 * Runs a command's work as a tracked run linked to the model's training run (MLflow's parent tag), in
 * the experiment the model was trained in, so a model's evaluations, audits and reports sit under it.
 * The work returns the metrics and the files to record; a failure ends the run FAILED.
 */
export async function trackedRun<T>(
  options: TrackedRunOptions,
  work: () => Promise<{ result: T; metrics?: Record<string, number | null | undefined>; artifacts?: string[] }>,
): Promise<T> {
  if (options.track === false) return (await work()).result;
  const meta = options.modelDir ? readModelMeta(options.modelDir) : undefined;
  const store = openStore({ trackingDir: options.trackingDir });
  const training =
    meta?.runId && store instanceof FileStore ? store.listRuns(undefined, { all: true }).find((r) => r.runId === meta.runId) : undefined;
  const tracker: Tracker = await startRun(training?.experimentName ?? 'gradelab', options.name, {
    trackingDir: options.trackingDir,
    tags: {
      'gradelab.command': options.kind,
      ...(meta?.runId && (training || !(store instanceof FileStore)) ? { 'mlflow.parentRunId': meta.runId } : {}),
    },
  });
  try {
    const params = Object.fromEntries(Object.entries(options.params ?? {}).filter(([, v]) => v !== undefined)) as Record<
      string,
      string | number | boolean
    >;
    if (Object.keys(params).length) await tracker.logParams(params);
    const { result, metrics, artifacts } = await work();
    const finite = Object.fromEntries(
      Object.entries(metrics ?? {}).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)),
    ) as Record<string, number>;
    if (Object.keys(finite).length) await tracker.logMetrics(finite);
    for (const f of artifacts ?? []) if (existsSync(f)) await tracker.logArtifact(f);
    await tracker.end('FINISHED');
    log.debug(`tracked as run ${tracker.runId}`);
    return result;
  } catch (err) {
    await tracker.end('FAILED');
    throw err;
  }
}
