import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  body: any;
  auth?: string;
  bytes: number;
}

/**
 * An in-memory MLflow tracking server speaking the documented REST API, for contract tests: it checks
 * each request's shape as MLflow's handlers do and records it. Failure modes can be switched on.
 */
export class FakeMlflow {
  server!: Server;
  url = '';
  requests: Recorded[] = [];
  experiments = new Map<string, string>();
  runs = new Map<
    string,
    {
      experimentId: string;
      tags: Record<string, string>;
      params: Record<string, string>;
      metrics: { key: string; value: number; timestamp: number; step: number }[];
      status: string;
      endTime?: number;
    }
  >();
  artifacts = new Map<string, Buffer>();
  /** Answer the next N requests with this status. */
  failNext: { count: number; status: number } = { count: 0, status: 500 };
  /** Never answer requests (a stalled server). */
  stall = false;
  /** Close the connection after processing the next N log-batch requests, without answering. */
  dropAfterProcessing = 0;
  private nextRun = 1;

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url!, 'http://x');
    const isArtifact = url.pathname.startsWith('/api/2.0/mlflow-artifacts/');
    let body: any;
    try {
      body = raw.length && !isArtifact ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      return this.send(res, 400, { error_code: 'MALFORMED_REQUEST', message: 'bad json' });
    }
    this.requests.push({
      method: req.method!,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      auth: req.headers.authorization,
      bytes: raw.length,
    });
    if (this.stall) return;
    if (this.failNext.count > 0) {
      this.failNext.count--;
      return this.send(res, this.failNext.status, { error_code: 'INTERNAL_ERROR', message: 'injected' });
    }
    const bad = (m: string) => this.send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: m });
    const p = url.pathname.replace('/api/2.0/mlflow/', '');
    if (isArtifact) {
      const m = /^\/api\/2\.0\/mlflow-artifacts\/artifacts\/([^/]+)\/([^/]+)\/artifacts\/(.+)$/.exec(url.pathname);
      if (req.method !== 'PUT' || !m) return bad('bad artifact path');
      this.artifacts.set(decodeURIComponent(m[3]), raw);
      return this.send(res, 200, {});
    }
    switch (`${req.method} ${p}`) {
      case 'GET experiments/get-by-name': {
        const id = this.experiments.get(url.searchParams.get('experiment_name') ?? '');
        return id
          ? this.send(res, 200, { experiment: { experiment_id: id, name: url.searchParams.get('experiment_name') } })
          : this.send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no experiment' });
      }
      case 'POST experiments/create': {
        if (typeof body?.name !== 'string' || !body.name) return bad('name required');
        const id = String(this.experiments.size + 1);
        this.experiments.set(body.name, id);
        return this.send(res, 200, { experiment_id: id });
      }
      case 'POST runs/create': {
        if (typeof body?.experiment_id !== 'string' || typeof body.start_time !== 'number')
          return bad('experiment_id and start_time required');
        const id = (this.nextRun++).toString(16).padStart(32, '0');
        const tags = Object.fromEntries((body.tags ?? []).map((t: any) => [t.key, t.value]));
        this.runs.set(id, { experimentId: body.experiment_id, tags, params: {}, metrics: [], status: 'RUNNING' });
        return this.send(res, 200, {
          run: {
            info: {
              run_id: id,
              experiment_id: body.experiment_id,
              status: 'RUNNING',
              artifact_uri: `mlflow-artifacts:/${body.experiment_id}/${id}/artifacts`,
            },
            data: {},
          },
        });
      }
      case 'GET runs/get': {
        const id = url.searchParams.get('run_id') ?? '';
        const run = this.runs.get(id);
        if (!run) return this.send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no run' });
        // MLflow's latest value per key: highest step, then timestamp, then value.
        const latest = new Map<string, (typeof run.metrics)[number]>();
        for (const m of run.metrics) {
          const a = latest.get(m.key);
          if (
            !a ||
            m.step > a.step ||
            (m.step === a.step && (m.timestamp > a.timestamp || (m.timestamp === a.timestamp && m.value > a.value)))
          )
            latest.set(m.key, m);
        }
        return this.send(res, 200, {
          run: {
            info: { run_id: id, status: run.status, artifact_uri: `mlflow-artifacts:/${run.experimentId}/${id}/artifacts` },
            data: { metrics: [...latest.values()] },
          },
        });
      }
      case 'POST runs/search': {
        const m = /^tags\.`([^`]+)` = '(.*)'$/.exec(body?.filter ?? '');
        const found = [...this.runs.entries()].filter(([, r]) => m && r.tags[m[1]] === m[2]).map(([id]) => ({ info: { run_id: id } }));
        return this.send(res, 200, found.length ? { runs: found } : {});
      }
      case 'POST runs/log-batch': {
        const run = this.runs.get(body?.run_id);
        if (!run) return this.send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no run' });
        const metrics = body.metrics ?? [];
        const params = body.params ?? [];
        const tags = body.tags ?? [];
        if (metrics.length > 1000 || params.length > 100 || tags.length > 100 || metrics.length + params.length + tags.length > 1000)
          return bad('batch too large');
        if (raw.length > 1_000_000) return bad('request too large');
        for (const m of metrics) {
          if (
            typeof m.key !== 'string' ||
            !(typeof m.value === 'number' || ['NaN', 'Infinity', '-Infinity'].includes(m.value)) ||
            typeof m.timestamp !== 'number' ||
            typeof m.step !== 'number'
          )
            return bad('bad metric');
        }
        for (const prm of params) {
          if (run.params[prm.key] !== undefined && run.params[prm.key] !== prm.value) return bad(`param ${prm.key} changed`);
          run.params[prm.key] = prm.value;
        }
        for (const t of tags) run.tags[t.key] = t.value;
        run.metrics.push(...metrics);
        if (this.dropAfterProcessing > 0) {
          this.dropAfterProcessing--;
          req.socket.destroy();
          return;
        }
        return this.send(res, 200, {});
      }
      case 'POST runs/set-tag': {
        const run = this.runs.get(body?.run_id);
        if (!run || typeof body.key !== 'string') return bad('bad set-tag');
        run.tags[body.key] = body.value;
        return this.send(res, 200, {});
      }
      case 'POST runs/update': {
        const run = this.runs.get(body?.run_id);
        if (!run || !['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'].includes(body.status)) return bad('bad update');
        run.status = body.status;
        run.endTime = body.end_time;
        return this.send(res, 200, { run_info: { run_id: body.run_id, status: body.status } });
      }
      case 'GET metrics/get-history': {
        const run = this.runs.get(url.searchParams.get('run_id') ?? '');
        if (!run) return this.send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no run' });
        return this.send(res, 200, { metrics: run.metrics.filter((m) => m.key === url.searchParams.get('metric_key')) });
      }
      default:
        return this.send(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `${req.method} ${p}` });
    }
  }

  private send(res: import('node:http').ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }
}
