import { randomUUID } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { log, tempPathFor } from '../core/index.ts';
import { RestStore, TrackingServerError } from './restStore.ts';
import type { Metric, RunStatus, TrackingStore } from './types.ts';

type JournalRecord =
  | { seq: number; op: 'create'; experimentName: string; runName: string; startTime: number; tags: Record<string, string> }
  | { seq: number; op: 'batch'; metrics: Metric[]; params: Record<string, string>; tags: Record<string, string> }
  | { seq: number; op: 'update'; status: RunStatus; endTime: number | null }
  | { seq: number; op: 'artifact'; file: string; name: string; artifactPath: string };

interface JournalState {
  serverRunId?: string;
  experimentId?: string;
  /** Highest sequence number the server has acknowledged. */
  acked: number;
  /** A record being sent when the process stopped: replay checks the server before resending. */
  inflight?: number;
}

const LOCAL_ID_TAG = 'gradelab.local_run_id';

/**
 * Nothing lost: every record is appended to a local journal (one JSON line per record) before it is
 * sent, and sent in order by a single flusher. The server's acknowledgements advance a cursor; a record
 * interrupted mid-send is checked against the server (run by its local id tag, metrics by their
 * history) before it is sent again, so each record reaches the server exactly once. A killed process
 * loses at most the line being written.
 */
export class JournaledStore implements TrackingStore {
  readonly kind = 'rest' as const;
  private flushing: Promise<void> | undefined;
  private seq = new Map<string, number>();
  lastError: string | undefined;

  constructor(readonly rest: RestStore, readonly dir: string) {
    mkdirSync(join(dir, 'files'), { recursive: true });
  }

  private journalPath(localId: string) {
    return join(this.dir, `${localId}.jsonl`);
  }

  private statePath(localId: string) {
    return join(this.dir, `${localId}.state.json`);
  }

  private append(localId: string, rec: Record<string, unknown>): void {
    const seq = (this.seq.get(localId) ?? this.records(localId).reduce((m, r) => Math.max(m, r.seq), 0)) + 1;
    this.seq.set(localId, seq);
    appendFileSync(this.journalPath(localId), `${JSON.stringify({ seq, ...rec })}\n`);
  }

  records(localId: string): JournalRecord[] {
    const p = this.journalPath(localId);
    if (!existsSync(p)) return [];
    const out: JournalRecord[] = [];
    for (const line of readFileSync(p, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // A torn last line from a killed process: that record was never acknowledged to anyone.
      }
    }
    return out;
  }

  state(localId: string): JournalState {
    const p = this.statePath(localId);
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : { acked: 0 };
  }

  private saveState(localId: string, s: JournalState): void {
    const p = this.statePath(localId);
    const tmp = tempPathFor(p);
    writeFileSync(tmp, JSON.stringify(s));
    renameSync(tmp, p);
  }

  /** Experiments resolve on the server when the run is created; until then the name stands in. */
  async getOrCreateExperiment(name: string): Promise<string> {
    return name;
  }

  async createRun(experimentName: string, runName: string, startTime: number, tags: Record<string, string>): Promise<string> {
    const localId = randomUUID().replace(/-/g, '');
    this.append(localId, { op: 'create', experimentName, runName, startTime, tags: { ...tags, [LOCAL_ID_TAG]: localId } });
    this.kick();
    return localId;
  }

  async logBatch(localId: string, batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> }): Promise<void> {
    this.append(localId, { op: 'batch', metrics: batch.metrics ?? [], params: batch.params ?? {}, tags: batch.tags ?? {} });
    this.kick();
  }

  async updateRun(localId: string, status: RunStatus, endTime: number | null): Promise<void> {
    this.append(localId, { op: 'update', status, endTime });
    this.kick();
  }

  endRunSync(localId: string, status: RunStatus, endTime: number): void {
    this.append(localId, { op: 'update', status, endTime });
  }

  async logArtifact(localId: string, localPath: string, artifactPath: string): Promise<void> {
    // A copy: the original may change or vanish before the server is back.
    const file = join(this.dir, 'files', `${localId}-${(this.seq.get(localId) ?? 0) + 1}-${basename(localPath)}`);
    copyFileSync(localPath, file);
    this.append(localId, { op: 'artifact', file, name: basename(localPath), artifactPath });
    this.kick();
  }

  /** Starts a background flush if none is running; failures stay in the journal for later. */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushAll()
      .catch((err) => {
        this.lastError = (err as Error).message;
      })
      .finally(() => {
        this.flushing = undefined;
      });
  }

  /** Waits for the running flush, then flushes again; resolves with the records still pending. */
  async flush(): Promise<number> {
    await this.flushing;
    try {
      await this.flushAll();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
    }
    return this.pending();
  }

  pending(): number {
    return this.localIds().reduce((n, id) => n + this.records(id).filter((r) => r.seq > this.state(id).acked).length, 0);
  }

  localIds(): string[] {
    return existsSync(this.dir) ? readdirSync(this.dir).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length)).sort() : [];
  }

  serverRunId(localId: string): string | undefined {
    return this.state(localId).serverRunId;
  }

  private async flushAll(): Promise<void> {
    for (const id of this.localIds()) await this.flushRun(id);
  }

  private async flushRun(localId: string): Promise<void> {
    const state = this.state(localId);
    for (const rec of this.records(localId)) {
      if (rec.seq <= state.acked) continue;
      const retry = state.inflight === rec.seq;
      state.inflight = rec.seq;
      this.saveState(localId, state);
      await this.send(localId, rec, state, retry);
      state.acked = rec.seq;
      state.inflight = undefined;
      this.saveState(localId, state);
    }
  }

  private async send(localId: string, rec: JournalRecord, state: JournalState, retry: boolean): Promise<void> {
    if (rec.op === 'create') {
      const exp = await this.rest.getOrCreateExperiment(rec.experimentName);
      state.experimentId = exp;
      let runId = retry ? await this.rest.findRunByTag(exp, LOCAL_ID_TAG, localId) : undefined;
      runId ??= await this.rest.createRun(exp, rec.runName, rec.startTime, rec.tags);
      state.serverRunId = runId;
      return;
    }
    const runId = state.serverRunId;
    if (!runId) throw new TrackingServerError(`journal ${localId}: no server run yet`);
    if (rec.op === 'batch') {
      let metrics = rec.metrics;
      if (retry && metrics.length) {
        // The previous attempt may have landed: drop metrics the server already holds.
        const have = new Set<string>();
        for (const key of new Set(metrics.map((m) => m.key))) {
          for (const m of await this.rest.metricHistory(runId, key)) have.add(`${m.key}|${m.step}|${m.timestamp}|${m.value}`);
        }
        metrics = metrics.filter((m) => !have.has(`${m.key}|${m.step}|${m.timestamp}|${m.value}`));
      }
      await this.rest.logBatch(runId, { metrics, params: rec.params, tags: rec.tags });
    } else if (rec.op === 'update') {
      await this.rest.updateRun(runId, rec.status, rec.endTime);
    } else {
      await this.rest.logArtifact(runId, rec.file, rec.artifactPath, state.experimentId, rec.name);
    }
  }
}

export function warnPending(store: JournaledStore): void {
  const n = store.pending();
  if (n > 0) log.warn(`${n} tracking records are kept in ${store.dir} until the MLflow server answers (${store.lastError ?? 'not sent yet'}); run \`gradelab runs sync\` to send them`);
}
