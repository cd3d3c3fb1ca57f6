import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { filesUnder } from './artifacts.ts';
import got, { HTTPError, RequestError } from 'got';
import { GradelabError } from '../core/index.ts';
import type { Metric, RunStatus, TrackingStore } from './types.ts';
import { osUser } from './metaYaml.ts';
import { MLFLOW_LIMITS, validateArtifactName, validateArtifactPath } from './validation.ts';

export class TrackingServerError extends GradelabError {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryable = false,
  ) {
    super(message, { code: 'TRACKING_SERVER' });
  }
}

export interface RestStoreOptions {
  /** Attempts per request (network errors, 429 and 5xx are retried with exponential backoff). */
  attempts?: number;
  /** Per-request timeout in ms. */
  timeoutMs?: number;
  backoffMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Authorization as MLflow's own client reads it: a bearer token, or basic user and password. */
export function authHeader(env: NodeJS.ProcessEnv): string | undefined {
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    return `Basic ${Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`).toString('base64')}`;
  }
  return undefined;
}

/** Splits a log-batch into requests within MLflow's limits (counts and 1 MB per request). */
export function splitBatch(batch: { metrics: Metric[]; params: { key: string; value: string }[]; tags: { key: string; value: string }[] }) {
  const out: { metrics: Metric[]; params: { key: string; value: string }[]; tags: { key: string; value: string }[] }[] = [];
  let cur = { metrics: [] as Metric[], params: [] as { key: string; value: string }[], tags: [] as { key: string; value: string }[] };
  let bytes = 64;
  const flush = () => {
    if (cur.metrics.length + cur.params.length + cur.tags.length) out.push(cur);
    cur = { metrics: [], params: [], tags: [] };
    bytes = 64;
  };
  const add = (kind: 'metrics' | 'params' | 'tags', item: never, size: number, limit: number) => {
    const total = cur.metrics.length + cur.params.length + cur.tags.length;
    if (
      (cur[kind] as unknown[]).length >= limit ||
      total >= MLFLOW_LIMITS.maxEntitiesPerBatch ||
      bytes + size > MLFLOW_LIMITS.maxBatchRequestBytes * 0.95
    )
      flush();
    (cur[kind] as unknown[]).push(item);
    bytes += size;
  };
  for (const p of batch.params) add('params', p as never, JSON.stringify(p).length + 1, MLFLOW_LIMITS.maxParamsTagsPerBatch);
  for (const t of batch.tags) add('tags', t as never, JSON.stringify(t).length + 1, MLFLOW_LIMITS.maxParamsTagsPerBatch);
  for (const m of batch.metrics) add('metrics', m as never, JSON.stringify(m).length + 1, MLFLOW_LIMITS.maxMetricsPerBatch);
  flush();
  return out;
}

/**
 * MLflow's REST API (/api/2.0/mlflow/...) through got. Errors never include the token: messages are
 * built from the method, path and status only.
 */
export class RestStore implements TrackingStore {
  readonly kind = 'rest' as const;
  readonly base: string;
  private readonly auth: string | undefined;
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  /** Each run's artifact_uri as the server reported it. */
  private readonly runArtifacts = new Map<string, string>();

  constructor(uri: string, options: RestStoreOptions = {}) {
    this.base = uri.replace(/\/+$/, '');
    this.auth = authHeader(options.env ?? process.env);
    this.attempts = options.attempts ?? 4;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.backoffMs = options.backoffMs ?? 250;
  }

  private async call<T>(method: 'GET' | 'POST', endpoint: string, body?: unknown, search?: Record<string, string>): Promise<T> {
    const url = `${this.base}/api/2.0/mlflow/${endpoint}`;
    let lastError: TrackingServerError | undefined;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 1)));
      try {
        return (await got(url, {
          method,
          json: body,
          searchParams: search,
          headers: this.auth ? { authorization: this.auth } : {},
          timeout: { request: this.timeoutMs },
          retry: { limit: 0 },
          responseType: 'json',
        }).json()) as T;
      } catch (err) {
        lastError = this.describe(method, endpoint, err);
        if (!lastError.retryable) throw lastError;
      }
    }
    throw lastError!;
  }

  private describe(method: string, endpoint: string, err: unknown): TrackingServerError {
    if (err instanceof HTTPError) {
      const status = err.response.statusCode;
      const body = err.response.body as { error_code?: string; message?: string } | undefined;
      const detail =
        body && typeof body === 'object' ? ` ${body.error_code ?? ''} ${String(body.message ?? '').slice(0, 300)}`.trimEnd() : '';
      return new TrackingServerError(
        `MLflow server answered ${status} to ${method} ${endpoint}${detail}`,
        status,
        status === 429 || status >= 500,
      );
    }
    const code = err instanceof RequestError ? err.code : undefined;
    return new TrackingServerError(`MLflow server unreachable for ${method} ${endpoint} (${code ?? (err as Error).name})`, undefined, true);
  }

  /** Whether the server answers its health check (MLflow's GET /health). */
  async healthy(): Promise<boolean> {
    try {
      const r = await got(`${this.base}/health`, {
        headers: this.auth ? { authorization: this.auth } : {},
        timeout: { request: this.timeoutMs },
        retry: { limit: 0 },
        throwHttpErrors: false,
      });
      return r.statusCode === 200;
    } catch {
      return false;
    }
  }

  async getOrCreateExperiment(name: string): Promise<string> {
    try {
      const r = await this.call<{ experiment: { experiment_id: string } }>('GET', 'experiments/get-by-name', undefined, {
        experiment_name: name,
      });
      return r.experiment.experiment_id;
    } catch (err) {
      if (!(err instanceof TrackingServerError) || err.status !== 404) throw err;
    }
    const r = await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name });
    return r.experiment_id;
  }

  async createRun(experimentId: string, runName: string, startTime: number, tags: Record<string, string>): Promise<string> {
    const r = await this.call<{ run: { info: { run_id: string; artifact_uri?: string } } }>('POST', 'runs/create', {
      experiment_id: experimentId,
      run_name: runName,
      start_time: startTime,
      // As MLflow's client: the OS user, also as the mlflow.user tag the UI shows.
      user_id: osUser(),
      tags: Object.entries({ 'mlflow.runName': runName, 'mlflow.user': osUser(), ...tags }).map(([key, value]) => ({ key, value })),
    });
    if (r.run.info.artifact_uri) this.runArtifacts.set(r.run.info.run_id, r.run.info.artifact_uri);
    return r.run.info.run_id;
  }

  /** A run's info and latest metric values (runs/get). */
  async getRun(runId: string): Promise<{ artifactUri: string; status: string; metrics: Metric[] }> {
    const r = await this.call<{ run: { info: { artifact_uri?: string; status: string }; data?: { metrics?: Metric[] } } }>(
      'GET',
      'runs/get',
      undefined,
      { run_id: runId },
    );
    const artifactUri = r.run.info.artifact_uri ?? '';
    if (artifactUri) this.runArtifacts.set(runId, artifactUri);
    return {
      artifactUri,
      status: r.run.info.status,
      metrics: (r.run.data?.metrics ?? []).map((m) => ({
        key: m.key,
        value: Number(m.value),
        timestamp: Number(m.timestamp),
        step: Number(m.step ?? 0),
      })),
    };
  }

  async findRunByTag(experimentId: string, key: string, value: string): Promise<string | undefined> {
    const r = await this.call<{ runs?: { info: { run_id: string } }[] }>('POST', 'runs/search', {
      experiment_ids: [experimentId],
      filter: `tags.\`${key}\` = '${value.replace(/'/g, "\\'")}'`,
      max_results: 1,
    });
    return r.runs?.[0]?.info.run_id;
  }

  async logBatch(
    runId: string,
    batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    const requests = splitBatch({
      // JSON has no NaN or infinities: MLflow's protobuf parser takes them as these strings.
      metrics: (batch.metrics ?? []).map((m) => (Number.isFinite(m.value) ? m : { ...m, value: nonFinite(m.value) as unknown as number })),
      params: Object.entries(batch.params ?? {}).map(([key, value]) => ({ key, value })),
      tags: Object.entries(batch.tags ?? {}).map(([key, value]) => ({ key, value })),
    });
    for (const r of requests) {
      if (r.metrics.length === 0 && r.params.length === 0 && r.tags.length === 1) {
        await this.call('POST', 'runs/set-tag', { run_id: runId, key: r.tags[0].key, value: r.tags[0].value });
      } else {
        await this.call('POST', 'runs/log-batch', { run_id: runId, ...r });
      }
    }
  }

  async metricHistory(runId: string, key: string): Promise<Metric[]> {
    const r = await this.call<{ metrics?: Metric[] }>('GET', 'metrics/get-history', undefined, { run_id: runId, metric_key: key });
    return (r.metrics ?? []).map((m) => ({ key, value: Number(m.value), timestamp: Number(m.timestamp), step: Number(m.step ?? 0) }));
  }

  async updateRun(runId: string, status: RunStatus, endTime: number | null): Promise<void> {
    await this.call('POST', 'runs/update', { run_id: runId, status, ...(endTime === null ? {} : { end_time: endTime }) });
  }

  /**
   * Uploads a file, or a folder's files under its name, to the run's artifact_uri through the server's
   * artifact proxy (mlflow-artifacts:/..., a server started with --serve-artifacts, MLflow's default
   * since 2.0). Paths are checked as MLflow's server checks them.
   */
  async logArtifact(runId: string, localPath: string, artifactPath: string, name = basename(localPath)): Promise<void> {
    const rel = validateArtifactPath(artifactPath);
    const files = filesUnder(localPath, [rel, name].filter(Boolean).join('/'));
    for (const [, relative] of files) validateArtifactName(relative);
    const root = await this.proxiedArtifactPath(runId);
    for (const [file, relative] of files) {
      await this.upload(`${root}/${relative.split('/').map(encodeURIComponent).join('/')}`, file);
    }
  }

  /** The path under /api/2.0/mlflow-artifacts/artifacts/ of a run's artifact_uri. */
  private async proxiedArtifactPath(runId: string): Promise<string> {
    const uri = this.runArtifacts.get(runId) ?? (await this.getRun(runId)).artifactUri;
    const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(uri);
    if (!m)
      throw new TrackingServerError(
        `run ${runId} keeps its artifacts at ${uri}, which the server does not proxy; start the MLflow server with --serve-artifacts (the default since MLflow 2.0) to upload through it`,
      );
    return m[1].replace(/\/+$/, '').split('/').map(encodeURIComponent).join('/');
  }

  private async upload(path: string, file: string): Promise<void> {
    const url = `${this.base}/api/2.0/mlflow-artifacts/artifacts/${path}`;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 1)));
      try {
        await got.put(url, {
          body: createReadStream(file),
          headers: { ...(this.auth ? { authorization: this.auth } : {}), 'content-length': String(statSync(file).size) },
          timeout: { request: this.timeoutMs * 4 },
          retry: { limit: 0 },
        });
        return;
      } catch (err) {
        const e = this.describe('PUT', `mlflow-artifacts/artifacts/${path}`, err);
        if (!e.retryable || attempt === this.attempts - 1) throw e;
      }
    }
  }
}

/** MLflow's JSON spelling of a non-finite double. */
function nonFinite(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}
