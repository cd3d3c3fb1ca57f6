import { randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, InputError, tempPathFor } from '../core/index.ts';
import { filesUnder } from './artifacts.ts';
import { osUser, parsePyFloat, pyFloat, readYaml, writeAtomicSync, writeYaml } from './metaYaml.ts';
import { RUN_STATUS_CODE, type Metric, type RunStatus, type RunSummary, type TrackingStore } from './types.ts';
import { validateArtifactName, validateArtifactPath, validateExperimentName } from './validation.ts';

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

  constructor(
    root: string,
    private readonly now: () => number = Date.now,
  ) {
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

  private trashedIds(): string[] {
    const trash = join(this.root, '.trash');
    return existsSync(trash)
      ? readdirSync(trash, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => d.name)
      : [];
  }

  private experimentMeta(id: string): Record<string, string> {
    return readYaml(join(this.root, id, 'meta.yaml'));
  }

  experimentName(id: string): string {
    return readYaml(join(this.root, id, 'meta.yaml')).name;
  }

  async getOrCreateExperiment(name: string): Promise<string> {
    validateExperimentName(name);
    const ids = this.experimentIds();
    const found = ids.find((id) => this.experimentName(id) === name && this.experimentMeta(id).lifecycle_stage !== 'deleted');
    if (found) return found;
    // MLflow 2.x makes 18-19 digit ids: compared and incremented as BigInt (a Number loses digits), and
    // past the ids of deleted experiments in .trash, which MLflow still reserves.
    const taken = [...ids, ...this.trashedIds()].filter((id) => /^\d+$/.test(id)).map(BigInt);
    let next = taken.reduce((a, b) => (b > a ? b : a), 0n) + 1n;
    while (existsSync(join(this.root, String(next))) || existsSync(join(this.root, '.trash', String(next)))) next++;
    const id = String(next);
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
    // As MLflow: <experiment's artifact_location>/<run id>/artifacts, wherever the experiment keeps them.
    const location = this.experimentMeta(experimentId).artifact_location || pathToFileURL(join(this.root, experimentId)).href;
    const artifactUri = `${location.replace(/\/+$/, '')}/${runId}/artifacts`;
    this.writeRunMeta(dir, {
      runId,
      experimentId,
      runName,
      startTime,
      endTime: null,
      status: 'RUNNING',
      artifactUri,
      lifecycleStage: 'active',
    });
    this.runDirs.set(runId, dir);
    await this.logBatch(runId, { tags: { 'mlflow.runName': runName, ...tags } });
    return runId;
  }

  private writeRunMeta(
    dir: string,
    m: {
      runId: string;
      experimentId: string;
      runName: string;
      startTime: number;
      endTime: number | null;
      status: RunStatus;
      artifactUri: string;
      lifecycleStage: string;
      userId?: string;
      deletedTime?: string;
    },
  ): void {
    writeYaml(join(dir, 'meta.yaml'), {
      artifact_uri: m.artifactUri,
      deleted_time: m.deletedTime ? Number(m.deletedTime) : null,
      end_time: m.endTime,
      entry_point_name: '',
      experiment_id: m.experimentId,
      lifecycle_stage: m.lifecycleStage,
      run_id: m.runId,
      run_name: m.runName,
      run_uuid: m.runId,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: m.startTime,
      status: RUN_STATUS_CODE[m.status],
      tags: [],
      user_id: m.userId || osUser(),
    });
  }

  async logBatch(
    runId: string,
    batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
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
        throw new ConfigError(
          `param '${k}' was already logged as '${readFileSync(p, 'utf8')}' for run ${runId}; MLflow params cannot change (log a metric or a new run instead)`,
        );
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
    for (const key of existsSync(join(dir, 'metrics')) ? (readdirSync(join(dir, 'metrics'), { recursive: true }) as string[]) : []) {
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
      // Everything else is kept as it is, as MLflow's update_run_info does.
      artifactUri: meta.artifact_uri || pathToFileURL(join(dir, 'artifacts')).href,
      lifecycleStage: meta.lifecycle_stage || 'active',
      deletedTime: meta.deleted_time,
    });
  }

  /** The local folder of a run's artifact_uri; refused where it is not on this file system. */
  artifactDir(runId: string): string {
    const uri = readYaml(join(this.runDir(runId), 'meta.yaml')).artifact_uri;
    if (!uri) return join(this.runDir(runId), 'artifacts');
    if (/^file:/i.test(uri)) return fileURLToPath(uri);
    if (isAbsolute(uri)) return uri;
    throw new ConfigError(
      `run ${runId} keeps its artifacts at ${uri}, which the file store cannot write to (log to an MLflow server that serves that location)`,
    );
  }

  async logArtifact(runId: string, localPath: string, artifactPath: string): Promise<void> {
    const rel = validateArtifactPath(artifactPath);
    if (!existsSync(localPath)) throw new InputError(`${localPath}: artifact file not found`);
    const base = this.artifactDir(runId);
    // Every name is checked before anything is copied.
    const files = filesUnder(localPath, [rel, basename(localPath)].filter(Boolean).join('/'));
    for (const [, relative] of files) validateArtifactName(relative);
    for (const [file, relative] of files) {
      const dst = join(base, ...relative.split('/'));
      mkdirSync(dirname(dst), { recursive: true });
      const tmp = tempPathFor(dst);
      copyFileSync(file, tmp);
      renameSync(tmp, dst);
    }
  }

  /**
   * Every run, newest first, with latest metric values. Runs deleted in MLflow (lifecycle_stage
   * deleted, or in a deleted experiment) are left out unless `all` is set, as MLflow's own lists do.
   */
  listRuns(experimentName?: string, options: { all?: boolean } = {}): RunSummary[] {
    const out: RunSummary[] = [];
    for (const exp of this.experimentIds()) {
      const name = this.experimentName(exp);
      if (experimentName && name !== experimentName) continue;
      if (!options.all && this.experimentMeta(exp).lifecycle_stage === 'deleted') continue;
      for (const d of readdirSync(join(this.root, exp), { withFileTypes: true })) {
        if (!d.isDirectory() || !/^[0-9a-f]{32}$/.test(d.name) || !existsSync(join(this.root, exp, d.name, 'meta.yaml'))) continue;
        const run = this.readRun(join(this.root, exp, d.name), name);
        if (options.all || run.lifecycleStage !== 'deleted') out.push(run);
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
        return { key, timestamp: Number(t), value: parsePyFloat(v), step: Number(s ?? 0) };
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
      lifecycleStage: meta.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
      userId: meta.user_id,
    };
  }
}
