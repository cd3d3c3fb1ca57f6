import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * MLflow's real tracking server and Python client (../shared/mlflow/server.sh: MLflow 2.9.2 from its
 * source on Debian's Python packages; `.ci/run` installs them with `server.sh deps`).
 */
export const SERVER_SH = fileURLToPath(new URL('../../../shared/mlflow/server.sh', import.meta.url));

export const hasMlflow =
  existsSync(SERVER_SH) && spawnSync(SERVER_SH, ['python', '-c', 'import mlflow, flask'], { stdio: 'ignore' }).status === 0;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class MlflowServer {
  pid = 0;
  constructor(
    readonly store: string,
    readonly port: number,
    readonly artifacts = `${store}-artifacts`,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): this {
    this.pid = Number(
      execFileSync(SERVER_SH, ['start', this.store, String(this.port), this.artifacts], { encoding: 'utf8', timeout: 300_000 }).trim(),
    );
    return this;
  }

  stop(signal: 'TERM' | 'KILL' = 'TERM'): void {
    if (this.pid) execFileSync(SERVER_SH, ['stop', String(this.pid), signal], { timeout: 120_000 });
    this.pid = 0;
  }
}

/** Runs Python with MLflow importable and returns its stdout parsed as JSON. */
export function mlflowPython<T = any>(code: string, ...args: string[]): T {
  const r = spawnSync(SERVER_SH, ['python', '-c', code, ...args], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

/** Every run MLflow's client sees at a tracking URI: info, params, tags, metric histories, artifacts. */
export const READ_ALL = `
import json, sys, math
from mlflow.tracking import MlflowClient
from mlflow.entities import ViewType
def f(v): return repr(v) if isinstance(v, float) and not math.isfinite(v) else v
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient(tracking_uri=sys.argv[1])
out = []
for e in c.search_experiments(view_type=ViewType.ALL):
    for r in c.search_runs([e.experiment_id], run_view_type=ViewType.ALL):
        i = r.info
        def walk(p=None):
            res = []
            for a in c.list_artifacts(i.run_id, p):
                res += walk(a.path) if a.is_dir else [a.path]
            return res
        hist = {k: [[m.step, m.timestamp, f(m.value)] for m in c.get_metric_history(i.run_id, k)] for k in r.data.metrics}
        out.append(dict(experiment=e.name, experiment_id=e.experiment_id, run_id=i.run_id, run_name=i.run_name, status=i.status,
            start=i.start_time, end=i.end_time, user=i.user_id, lifecycle=i.lifecycle_stage, artifact_uri=i.artifact_uri,
            params=r.data.params, tags=r.data.tags, metrics=hist, artifacts=sorted(walk())))
print(json.dumps(out))
`;
