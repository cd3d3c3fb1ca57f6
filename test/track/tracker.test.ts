import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FileStore, reapStaleRuns, startRun } from '../../src/track/index.ts';
import { tempDir } from '../helpers.ts';

const runTs = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
const script = fileURLToPath(new URL('../fixtures/trackedProcess.ts', import.meta.url));

describe('tracker on the file store', () => {
  it('logs params, metrics with steps, tags, nested runs and provenance', async () => {
    const dir = join(tempDir(), 'mlruns');
    const run = await startRun('exp-a', 'parent', { trackingDir: dir, tags: { 'gradelab.seed': '3' } });
    await run.logParams({ lr: 0.01, epochs: 3, augment: true });
    for (let s = 0; s < 3; s++) await run.logMetrics({ loss: 1 / (s + 1) }, s);
    const child = await run.startChild('condition-jpeg-3', { 'gradelab.condition': 'jpeg/3' });
    await child.logMetrics({ qwk: 0.7 });
    await child.end();
    await run.end();
    const store = new FileStore(dir);
    const runs = store.listRuns('exp-a');
    expect(runs).toHaveLength(2);
    const parent = runs.find((r) => r.runName === 'parent')!;
    const kid = runs.find((r) => r.runName === 'condition-jpeg-3')!;
    expect(parent.status).toBe('FINISHED');
    expect(parent.params).toEqual({ lr: '0.01', epochs: '3', augment: 'true' });
    expect(parent.metrics.loss).toBeCloseTo(1 / 3);
    expect(store.metricHistory(parent.runId, 'loss').map((m) => m.step)).toEqual([0, 1, 2]);
    expect(kid.tags['mlflow.parentRunId']).toBe(parent.runId);
    for (const t of ['mlflow.runName', 'mlflow.user', 'mlflow.source.name', 'gradelab.version', 'gradelab.host', 'gradelab.node'])
      expect(parent.tags[t], t).toBeTruthy();
    expect(parent.tags['gradelab.seed']).toBe('3');
  });

  it('rejects keys MLflow would reject, at log time', async () => {
    const run = await startRun('exp-b', 'r', { trackingDir: join(tempDir(), 'mlruns') });
    await expect(run.logMetrics({ 'a//b': 1 })).rejects.toThrow(/invalid metric name 'a\/\/b'/);
    await expect(run.logParams({ 'x:y': 1 })).rejects.toThrow(/invalid param name/);
    await expect(run.setTags({ t: 'v'.repeat(5001) })).rejects.toThrow(/over MLflow's limit of 5000/);
    await run.end();
  });

  it.each([
    ['finish', 'FINISHED'],
    ['throw', 'FAILED'],
    ['exit', 'FAILED'],
  ])('a process that ends by %s leaves the run %s', (mode, status) => {
    const dir = join(tempDir(), 'mlruns');
    const r = spawnSync(process.execPath, [runTs, script, dir, mode], { encoding: 'utf8', timeout: 600_000 });
    const runId = r.stdout.trim().split('\n')[0];
    expect(runId).toMatch(/^[0-9a-f]{32}$/);
    expect(new FileStore(dir).getRun(runId).status).toBe(status);
  });

  it("a library run installs no signal handler: Ctrl-C stays the host program's", async () => {
    const before = process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');
    const run = await startRun('lifecycle', 'in-process', { trackingDir: join(tempDir(), 'mlruns') });
    await run.end();
    expect(process.listenerCount('SIGINT') + process.listenerCount('SIGTERM')).toBe(before);
  });

  it('Ctrl-C marks the run KILLED; SIGKILL leaves it to be reaped as FAILED', async () => {
    for (const [signal, status] of [
      ['SIGINT', 'KILLED'],
      ['SIGKILL', 'FAILED'],
    ] as const) {
      const dir = join(tempDir(), 'mlruns');
      const child = spawn(process.execPath, [runTs, script, dir, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const runId = await new Promise<string>((res) => child.stdout.on('data', (d) => res(String(d).trim())));
      expect(new FileStore(dir).getRun(runId).status).toBe('RUNNING');
      child.kill(signal);
      await new Promise((res) => child.on('exit', res));
      const store = new FileStore(dir);
      if (signal === 'SIGKILL') {
        expect(store.getRun(runId).status).toBe('RUNNING');
        expect(reapStaleRuns(store)).toBe(1);
        // Ended at its last recorded activity (the metric logged 300 ms after the start), not at its start.
        const run = store.getRun(runId);
        const last = store.metricHistory(runId, 'loss').find((m) => m.step === 1)!.timestamp;
        expect(run.endTime).toBeGreaterThanOrEqual(last);
        expect(run.endTime! - run.startTime).toBeGreaterThanOrEqual(250);
      }
      expect(store.getRun(runId).status).toBe(status);
    }
  });
});
