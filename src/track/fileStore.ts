import { randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, InputError, tempPathFor } from '../core/index.ts';
import { RUN_STATUS_CODE, type Metric, type RunStatus, type RunSummary, type TrackingStore } from './types.ts';
import { validateArtifactPath, validateExperimentName } from './validation.ts';

/** Python's str(float), as MLflow's file store writes metric values. */
export function pyFloat(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mant, expText] = v.toExponential().split('e');
  const e = Number(expText);
  if (e < -4 || e >= 16) return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const s = v.toString();
  return s.includes('.') ? s : `${s}.0`;
}

/** A YAML scalar as PyYAML's safe_dump writes it (MLflow's meta.yaml). */
function yamlScalar(v: string | number | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return String(v);
  if (v === '') return "''";
  const ambiguous = /^(?:[-+]?(?:\d[\d_]*)?\.?\d+(?:[eE][-+]?\d+)?|[-+]?\.inf|\.nan|true|false|yes|no|on|off|null|~|y|n)$/i.test(v);
  const special = /^[-?:,[\]{}#&*!|>'"%@`\s]|[\n\r\t]|: |\s#|\s$/.test(v);
  return ambiguous || special ? `'${v.replace(/'/g, "''")}'` : v;
}

function writeYaml(path: string, obj: Record<string, string | number | null | []>): void {
  const lines = Object.keys(obj)
    .sort()
    .map((k) => `${k}: ${Array.isArray(obj[k]) ? '[]' : yamlScalar(obj[k] as string | number | null)}`);
  writeAtomicSync(path, `${lines.join('\n')}\n`);
}

function readYaml(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([a-z_]+): ?(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1).replace(/''/g, "'");
    out[m[1]] = v === 'null' ? '' : v;
  }
  return out;
}

function writeAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

const STATUS_BY_CODE = Object.fromEntries(Object.entries(RUN_STATUS_CODE).map(([k, v]) => [String(v), k])) as Record<string, RunStatus>;

/**
 * MLflow's file store layout (mlflow/store/tracking/file_store.py), readable by `mlflow ui
 * --backend-store-uri ./mlruns` up to MLflow 3.12: <root>/<experiment id>/meta.yaml, and per run
 * <run id>/meta.yaml, metrics/<key> ("<timestamp_ms> <value> <step>" lines), params/<key>,
 * tags/<key>, artifacts/. Keys with slashes become sub-folders, as in MLflow.
 */
export class FileStore implements TrackingStore {
  readonly kind = 'file' as const;
  readonly root: string;
  private runDirs = new Map<string, string>();

  constructor(root: string, private readonly now: () => number = Date.now) {
    this.root = resolve(root);
    if (existsSync(this.root) && !statSync(this.root).isDirectory()) throw new InputError(`${root}: tracking directory is not a folder`);
    if (!existsSync(join(this.root, '0', 'meta.yaml'))) this.createExperimentWithId('0', 'Default');
    mkdirSync(join(this.root, '.trash'), { recursive: true });
  }

  private createExperimentWithId(id: string, name: string): void {
    const t = this.now();
    writeYaml(join(this.root, id, 'meta.yaml'), {
      artifact_location: pathToFileURL(join(this.root, id)).href,
      creation_time: t,
      experiment_id: id,
      last_update_time: t,
      lifecycle_stage: 'active',
      name,
    });
  }

  experimentIds(): string[] {
    return readdirSync(this.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'models' && existsSync(join(this.root, d.name, 'meta.yaml')))
      .map((d) => d.name);
  }

  experimentName(id: string): string {
    return readYaml(join(this.root, id, 'meta.yaml')).name;
  }

  async getOrCreateExperiment(name: string): Promise<string> {
    validateExperimentName(name);
    const ids = this.experimentIds();
    const found = ids.find((id) => this.experimentName(id) === name);
    if (found) return found;
    const id = String(Math.max(0, ...ids.map(Number).filter(Number.isFinite)) + 1);
    this.createExperimentWithId(id, name);
    return id;
  }

  private runDir(runId: string): string {
    const cached = this.runDirs.get(runId);
    if (cached) return cached;
    if (!/^[0-9a-f]{32}$/.test(runId)) throw new InputError(`'${runId}' is not a run id (32 hex characters)`);
    for (const exp of this.experimentIds()) {
      const d = join(this.root, exp, runId);
      if (existsSync(join(d, 'meta.yaml'))) {
        this.runDirs.set(runId, d);
        return d;
      }
    }
    throw new InputError(`run ${runId} not found in ${this.root}`);
  }

  async createRun(experimentId: string, runName: string, startTime: number, tags: Record<string, string>): Promise<string> {
    const runId = randomUUID().replace(/-/g, '');
    const dir = join(this.root, experimentId, runId);
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) mkdirSync(join(dir, sub), { recursive: true });
    this.writeRunMeta(dir, { runId, experimentId, runName, startTime, endTime: null, status: 'RUNNING' });
    this.runDirs.set(runId, dir);
    await this.logBatch(runId, { tags: { 'mlflow.runName': runName, ...tags } });
    return runId;
  }

  private writeRunMeta(dir: string, m: { runId: string; experimentId: string; runName: string; startTime: number; endTime: number | null; status: RunStatus; userId?: string }): void {
    writeYaml(join(dir, 'meta.yaml'), {
      artifact_uri: pathToFileURL(join(dir, 'artifacts')).href,
      end_time: m.endTime,
      entry_point_name: '',
      experiment_id: m.experimentId,
      lifecycle_stage: 'active',
      run_id: m.runId,
      run_name: m.runName,
      run_uuid: m.runId,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: m.startTime,
      status: RUN_STATUS_CODE[m.status],
      tags: [],
      user_id: m.userId ?? process.env.USER ?? process.env.LOGNAME ?? 'unknown',
    });
  }

  async logBatch(runId: string, batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> }): Promise<void> {
    const dir = this.runDir(runId);
    for (const m of batch.metrics ?? []) {
      const p = join(dir, 'metrics', m.key);
      mkdirSync(dirname(p), { recursive: true });
      // One write per line in append mode: a killed process loses at most the line being written.
      appendFileSync(p, `${m.timestamp} ${pyFloat(m.value)} ${m.step}\n`);
    }
    for (const [k, v] of Object.entries(batch.params ?? {})) {
      const p = join(dir, 'params', k);
      if (existsSync(p) && readFileSync(p, 'utf8') !== v) {
        throw new ConfigError(`param '${k}' was already logged as '${readFileSync(p, 'utf8')}' for run ${runId}; MLflow params cannot change (log a metric or a new run instead)`);
      }
      writeAtomicSync(p, v);
    }
    for (const [k, v] of Object.entries(batch.tags ?? {})) writeAtomicSync(join(dir, 'tags', k), v);
  }

  async updateRun(runId: string, status: RunStatus, endTime: number | null): Promise<void> {
    this.endRunSync(runId, status, endTime);
  }

  /**
   * When a run last recorded anything: the newest of its start time, metric timestamps and the files
   * it wrote (params, tags, artifacts), so a reaped run ends when its process stopped writing.
   */
  lastActivity(runId: string): number {
    const dir = this.runDir(runId);
    let last = Number(readYaml(join(dir, 'meta.yaml')).start_time) || 0;
    const walk = (d: string) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else last = Math.max(last, Math.floor(statSync(p).mtimeMs));
      }
    };
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) walk(join(dir, sub));
    for (const key of existsSync(join(dir, 'metrics')) ? readdirSync(join(dir, 'metrics'), { recursive: true }) as string[] : []) {
      if (statSync(join(dir, 'metrics', key)).isDirectory()) continue;
      for (const m of this.metricHistory(runId, key)) last = Math.max(last, m.timestamp);
    }
    return last;
  }

  endRunSync(runId: string, status: RunStatus, endTime: number | null): void {
    const dir = this.runDir(runId);
    const meta = readYaml(join(dir, 'meta.yaml'));
    this.writeRunMeta(dir, {
      runId,
      experimentId: meta.experiment_id,
      runName: meta.run_name,
      startTime: Number(meta.start_time),
      endTime,
      status,
      userId: meta.user_id,
    });
  }

  async logArtifact(runId: string, localPath: string, artifactPath: string): Promise<void> {
    const rel = validateArtifactPath(artifactPath);
    if (!existsSync(localPath)) throw new InputError(`${localPath}: artifact file not found`);
    const base = join(this.runDir(runId), 'artifacts');
    const copy = (src: string, dst: string) => {
      if (statSync(src).isDirectory()) {
        for (const e of readdirSync(src)) copy(join(src, e), join(dst, e));
        return;
      }
      mkdirSync(dirname(dst), { recursive: true });
      const tmp = tempPathFor(dst);
      copyFileSync(src, tmp);
      renameSync(tmp, dst);
    };
    copy(localPath, join(base, rel, basename(localPath)));
  }

  /** Every run, newest first, with latest metric values. */
  listRuns(experimentName?: string): RunSummary[] {
    const out: RunSummary[] = [];
    for (const exp of this.experimentIds()) {
      const name = this.experimentName(exp);
      if (experimentName && name !== experimentName) continue;
      for (const d of readdirSync(join(this.root, exp), { withFileTypes: true })) {
        if (!d.isDirectory() || !/^[0-9a-f]{32}$/.test(d.name) || !existsSync(join(this.root, exp, d.name, 'meta.yaml'))) continue;
        out.push(this.readRun(join(this.root, exp, d.name), name));
      }
    }
    return out.sort((a, b) => b.startTime - a.startTime);
  }

  getRun(runId: string): RunSummary {
    const dir = this.runDir(runId);
    const meta = readYaml(join(dir, 'meta.yaml'));
    return this.readRun(dir, this.experimentName(meta.experiment_id));
  }

  metricHistory(runId: string, key: string): Metric[] {
    const p = join(this.runDir(runId), 'metrics', key);
    if (!existsSync(p)) return [];
    return readFileSync(p, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const [t, v, s] = l.trim().split(/\s+/);
        return { key, timestamp: Number(t), value: Number(v === 'nan' ? NaN : v), step: Number(s ?? 0) };
      });
  }

  private readRun(dir: string, experimentName: string): RunSummary {
    const meta = readYaml(join(dir, 'meta.yaml'));
    const readTree = (root: string): Record<string, string> => {
      const out: Record<string, string> = {};
      const walk = (d: string, prefix: string) => {
        if (!existsSync(d)) return;
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.name.startsWith('.')) continue;
          if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
          else out[`${prefix}${e.name}`] = readFileSync(join(d, e.name), 'utf8');
        }
      };
      walk(root, '');
      return out;
    };
    const metrics: Record<string, number> = {};
    for (const key of Object.keys(readTree(join(dir, 'metrics')))) {
      const h = this.metricHistory(meta.run_id, key);
      const last = h.reduce((a, b) => (b.step > a.step || (b.step === a.step && b.timestamp >= a.timestamp) ? b : a), h[0]);
      if (last) metrics[key] = last.value;
    }
    return {
      runId: meta.run_id,
      experimentId: meta.experiment_id,
      experimentName,
      runName: meta.run_name,
      status: STATUS_BY_CODE[meta.status] ?? 'RUNNING',
      startTime: Number(meta.start_time),
      endTime: meta.end_time ? Number(meta.end_time) : null,
      params: readTree(join(dir, 'params')),
      tags: readTree(join(dir, 'tags')),
      metrics,
      artifactUri: meta.artifact_uri,
    };
  }
}
