import { ConfigError } from '../core/index.ts';
import { FileStore, openStore, reapStaleRuns, type RunSummary } from '../track/index.ts';

// What runs list, show and compare share: the store they read and how they print runs.

export function fileStore(dir: string | undefined): FileStore {
  const store = openStore({
    mustExist: true,
    trackingDir: dir,
    trackingUri: dir
      ? undefined
      : process.env.MLFLOW_TRACKING_URI && /^https?:/i.test(process.env.MLFLOW_TRACKING_URI)
        ? undefined
        : process.env.MLFLOW_TRACKING_URI,
  });
  if (!(store instanceof FileStore))
    throw new ConfigError('runs list/show/compare read the local file store; use the MLflow UI for a server, or pass --tracking-dir');
  reapStaleRuns(store);
  return store;
}

export function fmtTime(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '';
}

export function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || Math.abs(v) < 0.001 ? v.toExponential(3) : v.toFixed(4);
}

/** The metrics a list shows first: the selected model's, then an evaluation's, then whatever the run has. */
const KEY_METRICS = ['best/val_qwk', 'best/epoch', 'qwk', 'accuracy', 'val/qwk'];

export function keyMetrics(metrics: Record<string, number>): string {
  const keys = [...KEY_METRICS.filter((k) => k in metrics), ...Object.keys(metrics).filter((k) => !KEY_METRICS.includes(k))];
  return keys
    .slice(0, 3)
    .map((k) => `${k}=${fmtNum(metrics[k])}`)
    .join(' ');
}

/** A run by id prefix or name; deleted runs are found too when named, and say so. */
export function findRun(store: FileStore, id: string): RunSummary {
  const runs = store.listRuns(undefined, { all: true });
  let matches = runs.filter((r) => r.runId.startsWith(id) || r.runName === id);
  if (matches.length > 1 && matches.filter((r) => r.lifecycleStage === 'active').length === 1)
    matches = matches.filter((r) => r.lifecycleStage === 'active');
  if (matches.length === 0) throw new ConfigError(`no run "${id}" in ${store.root}`);
  if (matches.length > 1) throw new ConfigError(`"${id}" matches ${matches.length} runs; give more of the run id`);
  return matches[0];
}
