import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JournaledStore, RestStore, splitBatch, startRun } from '../../src/track/index.ts';
import { tempDir } from '../helpers.ts';
import { FakeMlflow } from './fakeMlflow.ts';

let server: FakeMlflow | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  delete process.env.MLFLOW_TRACKING_URI;
  delete process.env.MLFLOW_TRACKING_TOKEN;
});

const fast = { attempts: 3, backoffMs: 10, timeoutMs: 400 };

describe('REST client against MLflow endpoints', () => {
  it('creates experiments and runs, logs batches, updates status, uploads artifacts, with the token', async () => {
    server = await new FakeMlflow().start();
    process.env.MLFLOW_TRACKING_URI = server.url;
    process.env.MLFLOW_TRACKING_TOKEN = 'secret-token-123';
    const dir = tempDir();
    const run = await startRun('gradelab-contract', 'r1', { journalDir: join(dir, 'journal'), tags: { 'gradelab.seed': '7' } });
    await run.logParams({ lr: 0.001, backbone: 'resnet' });
    await run.logMetrics({ loss: 1.5, 'val/qwk': 0.5 }, 0);
    await run.logMetrics({ loss: 1.2 }, 1);
    await run.setTags({ stage: 'done' });
    writeFileSync(join(dir, 'cm.png'), 'png-bytes');
    await run.logArtifact(join(dir, 'cm.png'), 'plots');
    await run.end();
    const paths = server.requests.map((r) => `${r.method} ${r.path.replace('/api/2.0/', '')}`);
    expect(paths[0]).toBe('GET mlflow/experiments/get-by-name');
    expect(paths[1]).toBe('POST mlflow/experiments/create');
    expect(paths[2]).toBe('POST mlflow/runs/create');
    expect(paths).toContain('POST mlflow/runs/log-batch');
    expect(paths).toContain('POST mlflow/runs/set-tag');
    expect(paths.at(-1)).toBe('POST mlflow/runs/update');
    expect(paths.some((p) => p.startsWith('PUT mlflow-artifacts/artifacts/1/'))).toBe(true);
    for (const r of server.requests) expect(r.auth).toBe('Bearer secret-token-123');
    const create = server.requests[2].body;
    expect(create.experiment_id).toBe('1');
    expect(create.run_name).toBe('r1');
    expect(typeof create.start_time).toBe('number');
    expect(create.tags).toContainEqual({ key: 'mlflow.runName', value: 'r1' });
    const stored = [...server.runs.values()][0];
    expect(stored.params).toEqual({ lr: '0.001', backbone: 'resnet' });
    expect(stored.metrics.map((m) => [m.key, m.value, m.step])).toEqual([
      ['loss', 1.5, 0],
      ['val/qwk', 0.5, 0],
      ['loss', 1.2, 1],
    ]);
    expect(stored.status).toBe('FINISHED');
    expect(stored.tags['gradelab.seed']).toBe('7');
    // The commit of the checkout the tests run in (CI clones the repository, so there is one).
    expect(stored.tags['mlflow.source.git.commit']).toBe(execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim());
    expect(JSON.stringify(stored.tags)).not.toContain('secret-token-123');
    expect(server.artifacts.get('plots/cm.png')?.toString()).toBe('png-bytes');
  });

  it('splits batches at 1000 metrics, 100 params and 1 MB', () => {
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, timestamp: 1, step: i }));
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'x' }));
    const parts = splitBatch({ metrics, params, tags: [] });
    for (const p of parts) {
      expect(p.metrics.length).toBeLessThanOrEqual(1000);
      expect(p.params.length).toBeLessThanOrEqual(100);
      expect(p.metrics.length + p.params.length + p.tags.length).toBeLessThanOrEqual(1000);
    }
    expect(parts.flatMap((p) => p.metrics)).toHaveLength(2500);
    expect(parts.flatMap((p) => p.params)).toHaveLength(250);
    const big = splitBatch({
      metrics: [],
      params: [],
      tags: Array.from({ length: 90 }, (_, i) => ({ key: `t${i}`, value: 'x'.repeat(5000) })),
    });
    expect(big.length).toBe(1);
    const huge = splitBatch({
      metrics: [],
      params: Array.from({ length: 300 }, (_, i) => ({ key: `p${i}`, value: 'y'.repeat(5900) })),
      tags: [],
    });
    for (const p of huge) expect(JSON.stringify(p).length).toBeLessThan(1_000_000);
  });

  it('retries 500s and 429s, and gives up on 400s with the server message (never the token)', async () => {
    server = await new FakeMlflow().start();
    const rest = new RestStore(server.url, { ...fast, env: { MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'pw-secret' } });
    server.failNext = { count: 2, status: 503 };
    expect(await rest.getOrCreateExperiment('e')).toBe('1');
    expect(server.requests[0].auth).toBe(`Basic ${Buffer.from('u:pw-secret').toString('base64')}`);
    server.failNext = { count: 1, status: 429 };
    const run = await rest.createRun('1', 'r', 1, {});
    const err = await rest
      .logBatch(run, { params: { a: '1' } })
      .then(() => rest.logBatch(run, { params: { a: '2' } }))
      .catch((e) => e);
    expect(err.message).toMatch(/400 to POST runs\/log-batch INVALID_PARAMETER_VALUE param a changed/);
    expect(err.message).not.toContain('pw-secret');
  });
});

describe('nothing lost', () => {
  async function countExactlyOnce(srv: FakeMlflow, n: number) {
    const run = [...srv.runs.values()][0];
    const steps = run.metrics
      .filter((m) => m.key === 'loss')
      .map((m) => m.step)
      .sort((a, b) => a - b);
    expect(steps).toEqual(Array.from({ length: n }, (_, i) => i));
  }

  it('server refusing connections: training goes on, the journal replays in order when it is back', async () => {
    const dir = tempDir();
    const store = new JournaledStore(new RestStore('http://127.0.0.1:9', fast), join(dir, 'journal'));
    const exp = await store.getOrCreateExperiment('e');
    const run = await store.createRun(exp, 'offline', 1, {});
    for (let i = 0; i < 20; i++)
      await store.logBatch(run, { metrics: [{ key: 'loss', value: 1 / (i + 1), timestamp: 1000 + i, step: i }] });
    await store.updateRun(run, 'FINISHED', 2000);
    expect(await store.flush()).toBe(22);
    expect(store.lastError).toMatch(/unreachable/);
    server = await new FakeMlflow().start();
    const back = new JournaledStore(new RestStore(server.url, fast), join(dir, 'journal'));
    expect(await back.flush()).toBe(0);
    await countExactlyOnce(server, 20);
    expect([...server.runs.values()][0].status).toBe('FINISHED');
    // A second sync sends nothing again.
    const before = server.requests.length;
    await back.flush();
    expect(server.requests.length).toBe(before);
  });

  it('500s mid-run and a stalled server: records wait, then arrive exactly once', async () => {
    server = await new FakeMlflow().start();
    const dir = tempDir();
    const store = new JournaledStore(new RestStore(server.url, fast), join(dir, 'journal'));
    const run = await store.createRun('e', 'flaky', 1, {});
    for (let i = 0; i < 5; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i, timestamp: 10 + i, step: i }] });
    await store.flush();
    server.failNext = { count: 100, status: 500 };
    for (let i = 5; i < 10; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i, timestamp: 10 + i, step: i }] });
    expect(await store.flush()).toBeGreaterThan(0);
    server.failNext = { count: 0, status: 500 };
    server.stall = true;
    for (let i = 10; i < 15; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i, timestamp: 10 + i, step: i }] });
    expect(await store.flush()).toBeGreaterThan(0);
    server.stall = false;
    expect(await store.flush()).toBe(0);
    await countExactlyOnce(server, 15);
  });

  it('the server stores a batch but the answer is lost: the retry does not duplicate it', async () => {
    server = await new FakeMlflow().start();
    const dir = tempDir();
    const store = new JournaledStore(new RestStore(server.url, { ...fast, attempts: 1 }), join(dir, 'journal'));
    const run = await store.createRun('e', 'lost-answer', 1, {});
    await store.flush();
    server.dropAfterProcessing = 1;
    await store.logBatch(run, { metrics: [0, 1, 2].map((i) => ({ key: 'loss', value: i, timestamp: 5 + i, step: i })) });
    expect(await store.flush()).toBe(0);
    await countExactlyOnce(server, 3);
  });

  it('a process killed between writes: a torn journal line is dropped, the rest is sent once', async () => {
    server = await new FakeMlflow().start();
    const dir = tempDir();
    const journal = join(dir, 'journal');
    const store = new JournaledStore(new RestStore('http://127.0.0.1:9', fast), journal);
    const run = await store.createRun('e', 'killed', 1, {});
    for (let i = 0; i < 4; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i, timestamp: 1 + i, step: i }] });
    await store.flush();
    const { appendFileSync } = await import('node:fs');
    appendFileSync(join(journal, `${run}.jsonl`), '{"seq": 99, "op": "batch", "metr');
    const revived = new JournaledStore(new RestStore(server.url, fast), journal);
    expect(await revived.flush()).toBe(0);
    await countExactlyOnce(server, 4);
  });
});
