import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, onInterrupt } from '../core/index.ts';
import { FileStore } from './fileStore.ts';
import { JournaledStore, warnPending } from './journal.ts';
import { provenanceTags } from './provenance.ts';
import { RestStore } from './restStore.ts';
import type { Metric, RunStatus, Tracker, TrackingStore } from './types.ts';
import { validateKey, validateMetric, validateParamValue, validateTagValue } from './validation.ts';

export interface TrackingOptions {
  /** The local store's folder (default ./mlruns); ignored when a server URI is in effect. */
  trackingDir?: string;
  /** An MLflow server (http, https) or a file store (file:, path); default MLFLOW_TRACKING_URI. */
  trackingUri?: string;
  /** Where REST records wait for the server (default .gradelab/journal). */
  journalDir?: string;
  /** A command that only reads runs: a file store that does not exist is a mistyped folder, not an empty store. */
  mustExist?: boolean;
}

/** Picks the store: an MLflow server when the URI is http(s), else the local file store. */
export function openStore(options: TrackingOptions = {}): TrackingStore {
  const uri = options.trackingUri ?? process.env.MLFLOW_TRACKING_URI;
  if (uri && /^https?:\/\//i.test(uri)) {
    return new JournaledStore(new RestStore(uri), resolve(options.journalDir ?? process.env.GRADELAB_JOURNAL_DIR ?? '.gradelab/journal'));
  }
  if (uri && !/^file:/i.test(uri) && /^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new ConfigError(
      `MLFLOW_TRACKING_URI "${uri.replace(/\/\/[^@/]*@/, '//***@')}" is not supported: use http(s):// for a server or a folder for the file store`,
    );
  }
  const dir = options.trackingDir ?? (uri ? (uri.startsWith('file:') ? fileURLToPath(uri) : uri) : 'mlruns');
  if (options.mustExist && !existsSync(dir))
    throw new ConfigError(
      `${dir}: no tracking store there (no run was ever recorded into it); check --tracking-dir or MLFLOW_TRACKING_URI`,
    );
  return new FileStore(dir);
}

const active = new Map<string, { store: TrackingStore; runId: string }>();
let hooked = false;

/**
 * A crash or Ctrl-C never leaves a run RUNNING: an interruption (the CLI's signal handlers) marks
 * active runs KILLED, an exit without end() marks them FAILED, synchronously (exit hooks cannot await).
 */
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  const endAll = (status: RunStatus) => {
    for (const { store, runId } of active.values()) {
      try {
        store.endRunSync?.(runId, status, Date.now());
      } catch {
        // The process is going down: nothing more to do for this run.
      }
    }
    active.clear();
  };
  onInterrupt((reason) => endAll(reason === 'signal' ? 'KILLED' : 'FAILED'));
}

class RunTracker implements Tracker {
  private ended = false;

  constructor(
    readonly store: TrackingStore,
    readonly runId: string,
    readonly experimentId: string,
    private readonly experimentName: string,
  ) {
    active.set(runId, { store, runId });
  }

  async logParams(params: Record<string, string | number | boolean>): Promise<void> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) out[validateKey('param', k)] = validateParamValue(k, String(v));
    await this.store.logBatch(this.runId, { params: out });
  }

  async logMetrics(metrics: Record<string, number>, step = 0): Promise<void> {
    const timestamp = Date.now();
    const list: Metric[] = Object.entries(metrics).map(([key, value]) => ({
      key,
      value: validateMetric(key, value, timestamp, step),
      timestamp,
      step,
    }));
    await this.store.logBatch(this.runId, { metrics: list });
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags)) out[validateKey('tag', k)] = validateTagValue(k, String(v));
    await this.store.logBatch(this.runId, { tags: out });
  }

  async logArtifact(path: string, artifactPath = ''): Promise<void> {
    await this.store.logArtifact(this.runId, path, artifactPath);
  }

  async startChild(runName: string, tags: Record<string, string> = {}): Promise<Tracker> {
    return startRunIn(this.store, this.experimentName, runName, { ...tags, 'mlflow.parentRunId': this.runId });
  }

  async end(status: RunStatus = 'FINISHED'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    active.delete(this.runId);
    await this.store.updateRun(this.runId, status, Date.now());
    if (this.store instanceof JournaledStore) {
      await this.store.flush();
      warnPending(this.store);
    }
  }
}

async function startRunIn(store: TrackingStore, experiment: string, runName: string, tags: Record<string, string>): Promise<Tracker> {
  installHooks();
  for (const [k, v] of Object.entries(tags)) {
    validateKey('tag', k);
    validateTagValue(k, v);
  }
  const experimentId = await store.getOrCreateExperiment(experiment);
  const runId = await store.createRun(experimentId, runName, Date.now(), { ...provenanceTags(), ...tags });
  return new RunTracker(store, runId, experimentId, experiment);
}

/** Starts a tracked run in an experiment (created if needed), with provenance tags. */
export async function startRun(
  experiment: string,
  runName: string,
  options: TrackingOptions & { tags?: Record<string, string> } = {},
): Promise<Tracker> {
  const store = openStore(options);
  if (store instanceof FileStore) reapStaleRuns(store);
  return startRunIn(store, experiment, runName, options.tags ?? {});
}

/** Reopens a run of the local file store (a resumed training) and marks it RUNNING again. */
export async function resumeRun(runId: string, options: TrackingOptions = {}): Promise<Tracker> {
  const store = openStore(options);
  if (!(store instanceof FileStore))
    throw new ConfigError('resuming a tracked run needs the local file store; on a server the resumed training starts a new run');
  const run = store.getRun(runId);
  installHooks();
  await store.updateRun(runId, 'RUNNING', null);
  await store.logBatch(runId, { tags: { 'gradelab.pid': String(process.pid), 'gradelab.host': hostname(), 'gradelab.resumed': 'true' } });
  return new RunTracker(store, runId, run.experimentId, run.experimentName);
}

/** Whether a process of this host is alive (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs left RUNNING by a process that was killed outright (SIGKILL, power loss) on this host are
 * marked FAILED, ending at their last recorded activity.
 */
export function reapStaleRuns(store: FileStore): number {
  let n = 0;
  for (const run of store.listRuns()) {
    if (run.status !== 'RUNNING' || run.tags['gradelab.host'] !== hostname()) continue;
    const pid = Number(run.tags['gradelab.pid']);
    if (!pid || pidAlive(pid)) continue;
    store.endRunSync(run.runId, 'FAILED', store.lastActivity(run.runId));
    n++;
  }
  return n;
}
