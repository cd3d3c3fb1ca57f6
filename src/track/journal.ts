import { randomUUID } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { log, tempPathFor } from '../core/index.ts';
import { RestStore, TrackingServerError } from './restStore.ts';
import { filesUnder } from './artifacts.ts';
import type { Metric, RunStatus, TrackingStore } from './types.ts';
import { validateArtifactName, validateArtifactPath } from './validation.ts';

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
  /** Why the server refused to create the run: its later records are quarantined with it. */
  quarantined?: string;
}

const LOCAL_ID_TAG = 'gradelab.local_run_id';
const PARENT_TAG = 'mlflow.parentRunId';

/**
 * Nothing lost: every record is appended to a local journal (one JSON line per record) before it is
 * sent, and sent in order by a single flusher. The server's acknowledgements advance a cursor; a record
 * interrupted mid-send is checked against the server (run by its local id tag, metrics by their
 * history) before it is sent again, so each record reaches the server exactly once. A killed process
 * loses at most the line being written.
 */
export class JournaledStore implements TrackingStore {
  readonly kind = 'rest' as const;
  private running: Promise<void> | undefined;
  private again = false;
  private seq = new Map<string, number>();
  private readonly flushingRuns = new Set<string>();
  lastError: string | undefined;

  constructor(
    readonly rest: RestStore,
    readonly dir: string,
  ) {
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
        const rec = JSON.parse(line) as JournalRecord;
        if (rec.op === 'batch') rec.metrics = rec.metrics.map((m) => (typeof m.value === 'number' ? m : { ...m, value: Number(m.value) }));
        out.push(rec);
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

  async logBatch(
    localId: string,
    batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    // JSON has no NaN or infinities (JSON.stringify writes null): they are kept as MLflow's strings.
    const metrics = (batch.metrics ?? []).map((m) => (Number.isFinite(m.value) ? m : { ...m, value: String(m.value) }));
    this.append(localId, { op: 'batch', metrics, params: batch.params ?? {}, tags: batch.tags ?? {} });
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
    // Names MLflow would refuse fail now, not when the journal is replayed.
    const rel = validateArtifactPath(artifactPath);
    for (const [, relative] of filesUnder(localPath, [rel, basename(localPath)].filter(Boolean).join('/'))) validateArtifactName(relative);
    // A copy (a folder's whole tree): the original may change or vanish before the server is back.
    const file = join(this.dir, 'files', `${localId}-${(this.seq.get(localId) ?? 0) + 1}-${basename(localPath)}`);
    cpSync(localPath, file, { recursive: true });
    this.append(localId, { op: 'artifact', file, name: basename(localPath), artifactPath });
    this.kick();
  }

  /**
   * Starts a background flush, or asks the running one for another pass: one flush at a time, so no
   * record is ever sent by two at once, and every record appended meanwhile is seen.
   */
  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.flushAll();
          this.lastError = undefined;
        } catch (err) {
          // The server is unreachable or failing: the records wait in the journal for the next flush.
          this.lastError = (err as Error).message;
          return;
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Sends everything appended so far (after any flush in progress); resolves with the records still pending. */
  async flush(): Promise<number> {
    while (this.running) await this.running;
    this.kick();
    await this.running;
    return this.pending();
  }

  pending(): number {
    return this.localIds().reduce((n, id) => n + this.records(id).filter((r) => r.seq > this.state(id).acked).length, 0);
  }

  localIds(): string[] {
    return existsSync(this.dir)
      ? readdirSync(this.dir)
          .filter((f) => /^[0-9a-f]{32}\.jsonl$/.test(f))
          .map((f) => f.slice(0, -'.jsonl'.length))
          .sort()
      : [];
  }

  serverRunId(localId: string): string | undefined {
    return this.state(localId).serverRunId;
  }

  private async flushAll(): Promise<void> {
    for (const id of this.localIds()) await this.flushRun(id);
  }

  /**
   * Sends a run's records in order. A record the server refuses for what it is (a 4xx other than 429:
   * a changed param, a name it rejects) is quarantined, kept on disk with the server's answer, and the
   * rest of the run still goes, so one bad record never holds the run RUNNING or the runs after it.
   * An unreachable or failing server (network errors, 429, 5xx) stops the flush: everything waits.
   */
  private async flushRun(localId: string, upTo = Infinity): Promise<void> {
    if (this.flushingRuns.has(localId)) return;
    this.flushingRuns.add(localId);
    try {
      const state = this.state(localId);
      for (const rec of this.records(localId)) {
        if (rec.seq <= state.acked) continue;
        if (rec.seq > upTo) break;
        const retry = state.inflight === rec.seq;
        state.inflight = rec.seq;
        this.saveState(localId, state);
        try {
          if (state.quarantined) throw new QuarantineError(`its run could not be created: ${state.quarantined}`);
          await this.send(localId, rec, state, retry);
        } catch (err) {
          if (await this.mustWait(err)) throw err;
          const message = (err as Error).message;
          appendFileSync(this.quarantinePath(localId), `${JSON.stringify({ record: rec, error: message, at: Date.now() })}\n`);
          if (rec.op === 'create') state.quarantined = message;
          log.warn(`tracking record ${rec.seq} (${rec.op}) of run ${localId} quarantined in ${this.quarantinePath(localId)}: ${message}`);
        }
        state.acked = rec.seq;
        state.inflight = undefined;
        this.saveState(localId, state);
      }
    } finally {
      this.flushingRuns.delete(localId);
    }
  }

  /**
   * Whether a failure means "wait for the server" rather than "this record is refused". A 4xx (not 429)
   * refuses the record. A 5xx is ambiguous: MLflow 2.x answers 500 to some refusals (a changed param),
   * so after the retries a server that still answers its health check has refused the record itself.
   */
  private async mustWait(err: unknown): Promise<boolean> {
    if (!(err instanceof TrackingServerError) || !err.retryable) return false;
    if (err.status === undefined || err.status === 429) return true;
    return !(await this.rest.healthy());
  }

  private quarantinePath(localId: string): string {
    return join(this.dir, `${localId}.quarantine.jsonl`);
  }

  /** Records the server refused, with its answers, kept for inspection (delete the files to forget them). */
  quarantined(): { localId: string; seq: number; op: string; error: string }[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.quarantine.jsonl'))
      .sort()
      .flatMap((f) =>
        readFileSync(join(this.dir, f), 'utf8')
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => {
            const q = JSON.parse(l) as { record: JournalRecord; error: string };
            return { localId: f.slice(0, -'.quarantine.jsonl'.length), seq: q.record.seq, op: q.record.op, error: q.error };
          }),
      );
  }

  /** The server's id of a run logged here (its create sent first); other ids pass through unchanged. */
  private async serverIdOf(id: string): Promise<string> {
    if (!existsSync(this.journalPath(id))) return id;
    const create = this.records(id).find((r) => r.op === 'create');
    if (create) await this.flushRun(id, create.seq);
    const server = this.state(id).serverRunId;
    if (!server) throw new QuarantineError(`its parent run ${id} was never created on the server`);
    return server;
  }

  /** Tags with a parent given by its local id (a child run started here) moved to the server's id. */
  private async serverTags(tags: Record<string, string>): Promise<Record<string, string>> {
    const parent = tags[PARENT_TAG];
    return parent ? { ...tags, [PARENT_TAG]: await this.serverIdOf(parent) } : tags;
  }

  private async send(localId: string, rec: JournalRecord, state: JournalState, retry: boolean): Promise<void> {
    if (rec.op === 'create') {
      const exp = await this.rest.getOrCreateExperiment(rec.experimentName);
      state.experimentId = exp;
      let runId = retry ? await this.rest.findRunByTag(exp, LOCAL_ID_TAG, localId) : undefined;
      runId ??= await this.rest.createRun(exp, rec.runName, rec.startTime, await this.serverTags(rec.tags));
      state.serverRunId = runId;
      return;
    }
    const runId = state.serverRunId;
    if (!runId) throw new TrackingServerError(`journal ${localId}: no server run yet`);
    if (rec.op === 'batch') {
      const metrics = retry ? await this.notYetStored(runId, rec.metrics) : rec.metrics;
      await this.rest.logBatch(runId, { metrics, params: rec.params, tags: await this.serverTags(rec.tags) });
    } else if (rec.op === 'update') {
      await this.rest.updateRun(runId, rec.status, rec.endTime);
    } else {
      await this.rest.logArtifact(runId, rec.file, rec.artifactPath, rec.name);
    }
  }

  /**
   * The metrics of an interrupted batch the server does not hold yet. One runs/get gives the latest
   * value of every key: a key whose latest is the batch's own last point for it landed whole (the server
   * stores a batch in order), a key it has never seen landed not at all; only keys in between need
   * their history (a 3,000-key batch costs one request, not 3,000).
   */
  private async notYetStored(runId: string, metrics: Metric[]): Promise<Metric[]> {
    if (!metrics.length) return metrics;
    const same = (a: Metric, b: Metric) => a.step === b.step && a.timestamp === b.timestamp && String(a.value) === String(b.value);
    const latest = new Map((await this.rest.getRun(runId)).metrics.map((m) => [m.key, m]));
    const byKey = new Map<string, Metric[]>();
    for (const m of metrics) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m]);
    const keep: Metric[] = [];
    for (const [key, ms] of byKey) {
      const have = latest.get(key);
      if (!have) {
        keep.push(...ms);
        continue;
      }
      if (ms.some((m) => same(m, have)) && same(newest(ms), have)) continue;
      const history = await this.rest.metricHistory(runId, key);
      keep.push(...ms.filter((m) => !history.some((h) => same(h, m))));
    }
    return metrics.filter((m) => keep.includes(m));
  }

  /**
   * Runs whose process died without ending them (SIGKILL, power loss) on this host: a FAILED update
   * is added to their journal, ending at their last recorded activity, so the server does not show
   * them RUNNING for good. Returns how many.
   */
  reapStale(isAlive: (pid: number) => boolean): number {
    let n = 0;
    for (const id of this.localIds()) {
      const records = this.records(id);
      const create = records.find((r): r is Extract<JournalRecord, { op: 'create' }> => r.op === 'create');
      if (!create || records.some((r) => r.op === 'update' && r.status !== 'RUNNING')) continue;
      const pid = Number(create.tags['gradelab.pid']);
      if (create.tags['gradelab.host'] !== hostname() || !pid || isAlive(pid)) continue;
      const last = records.reduce(
        (t, r) =>
          Math.max(
            t,
            r.op === 'batch' ? r.metrics.reduce((a, m) => Math.max(a, m.timestamp), 0) : r.op === 'update' ? (r.endTime ?? 0) : 0,
          ),
        create.startTime,
      );
      this.append(id, { op: 'update', status: 'FAILED', endTime: last });
      n++;
    }
    return n;
  }
}

/** The newest point as MLflow picks the latest value: highest step, then timestamp, then value. */
function newest(ms: Metric[]): Metric {
  return ms.reduce((a, b) =>
    b.step > a.step || (b.step === a.step && (b.timestamp > a.timestamp || (b.timestamp === a.timestamp && b.value > a.value))) ? b : a,
  );
}

/** A record that cannot be sent as it is (its run or parent is missing): quarantined, never retried. */
class QuarantineError extends Error {}

export function warnPending(store: JournaledStore): void {
  const n = store.pending();
  if (n > 0)
    log.warn(
      `${n} tracking records are kept in ${store.dir} until the MLflow server answers (${store.lastError ?? 'not sent yet'}); run \`gradelab runs sync\` to send them`,
    );
}
