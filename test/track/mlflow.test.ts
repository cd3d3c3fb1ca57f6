import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import got from 'got';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, JournaledStore, RestStore, startRun, type Tracker } from '../../src/track/index.ts';
import { tempDir, missingTool } from '../helpers.ts';
import { freePort, hasMlflow, MlflowServer, mlflowPython, READ_ALL } from './mlflowServer.ts';

const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const runTs = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
const trackIndex = fileURLToPath(new URL('../../src/track/index.ts', import.meta.url));
const dir = tempDir();
const LONG_KEY = `k${'e'.repeat(248)}y`;

afterEach(() => {
  delete process.env.MLFLOW_TRACKING_URI;
  delete process.env.GRADELAB_JOURNAL_DIR;
});

/** What every test logs: params (one key of MLflow's maximum length), non-finite metrics, a file and a folder, a child run. */
async function logEverything(parent: Tracker, files: string): Promise<Tracker> {
  await parent.logParams({ lr: 0.001, backbone: 'resnet', [LONG_KEY]: 'longest key' });
  await parent.logMetrics({ loss: 1.5, 'val/qwk': 0.25 }, 0);
  await parent.logMetrics({ loss: NaN, 'val/qwk': Infinity }, 1);
  await parent.logMetrics({ loss: -Infinity }, 2);
  await parent.setTags({ stage: 'trained' });
  mkdirSync(join(files, 'charts', 'sub'), { recursive: true });
  writeFileSync(join(files, 'history.json'), '{"epochs": 3}');
  writeFileSync(join(files, 'charts', 'a.png'), 'png-a');
  writeFileSync(join(files, 'charts', 'sub', 'b.svg'), '<svg/>');
  await parent.logArtifact(join(files, 'history.json'), 'model');
  await parent.logArtifact(join(files, 'charts'));
  const child = await parent.startChild('condition blur 3', { 'gradelab.condition': 'blur' });
  await child.logMetrics({ qwk: 0.5 }, 0);
  await child.end();
  return child;
}

/** The runs MLflow's client reads, checked against what logEverything logged. */
function expectEverything(runs: any[], experiment: string, parentName: string): void {
  const parent = runs.find((r) => r.run_name === parentName);
  const child = runs.find((r) => r.run_name === 'condition blur 3');
  expect(parent, JSON.stringify(runs.map((r) => r.run_name))).toBeDefined();
  expect(parent.experiment).toBe(experiment);
  expect(parent.status).toBe('FINISHED');
  expect(parent.end).toBeGreaterThanOrEqual(parent.start);
  expect(parent.user).toBe(userInfo().username);
  expect(parent.params).toEqual({ lr: '0.001', backbone: 'resnet', [LONG_KEY]: 'longest key' });
  expect(parent.metrics.loss.map((m: any[]) => [m[0], m[2]])).toEqual([
    [0, 1.5],
    [1, 'nan'],
    [2, '-inf'],
  ]);
  expect(parent.metrics['val/qwk'].map((m: any[]) => [m[0], m[2]])).toEqual([
    [0, 0.25],
    [1, 'inf'],
  ]);
  expect(parent.tags.stage).toBe('trained');
  expect(parent.artifacts).toEqual(['charts/a.png', 'charts/sub/b.svg', 'model/history.json']);
  // The child points at its parent by the id MLflow knows it by.
  expect(child.tags['mlflow.parentRunId']).toBe(parent.run_id);
  expect(child.status).toBe('FINISHED');
  expect(child.metrics.qwk.map((m: any[]) => m[2])).toEqual([0.5]);
}

describe.skipIf(missingTool(hasMlflow))('a real MLflow 2.9.2: file store', () => {
  it('what gradelab writes, MLflow reads back value by value (NaN, infinities, folders, a 250-character key, parent links)', async () => {
    const store = join(dir, 'file-a');
    const parent = await startRun('gradelab-file', 'train resnet', { trackingDir: store });
    await logEverything(parent, join(dir, 'files-a'));
    await parent.end();
    expectEverything(mlflowPython(READ_ALL, pathToFileURL(store).href), 'gradelab-file', 'train resnet');
  });

  it('experiments created in turn by MLflow and gradelab in one store never collide, even with MLflow 2 ids', async () => {
    const store = join(dir, 'file-mixed');
    const uri = pathToFileURL(store).href;
    const create = (name: string) =>
      mlflowPython<string>(
        `import json, sys, mlflow; mlflow.set_tracking_uri(sys.argv[1]); print(json.dumps(mlflow.create_experiment(sys.argv[2])))`,
        uri,
        name,
      );
    const ids: Record<string, string> = {};
    // Two gradelab experiments in a row after an MLflow one: with ids as Numbers, the second got the
    // first's id (an 18-digit id + 1 rounds back to itself) and overwrote it.
    ids['mlflow-1'] = create('mlflow-1');
    ids['gradelab-1'] = await new FileStore(store).getOrCreateExperiment('gradelab-1');
    ids['gradelab-2'] = await new FileStore(store).getOrCreateExperiment('gradelab-2');
    ids['mlflow-2'] = create('mlflow-2');
    ids['gradelab-3'] = await new FileStore(store).getOrCreateExperiment('gradelab-3');
    expect(ids['mlflow-1']).toMatch(/^\d{18,19}$/);
    expect(new Set(Object.values(ids)).size).toBe(5);
    for (const name of Object.keys(ids)) {
      const run = await startRun(name, `run in ${name}`, { trackingDir: store });
      await run.end();
    }
    const seen = mlflowPython<any[]>(READ_ALL, uri);
    for (const [name, id] of Object.entries(ids)) {
      expect(seen.filter((r) => r.experiment === name).map((r) => [r.experiment_id, r.run_name])).toEqual([[id, `run in ${name}`]]);
      expect(await new FileStore(store).getOrCreateExperiment(name)).toBe(id);
    }
  });

  it("MLflow's runs read in gradelab: long names PyYAML folds, deleted runs hidden unless --all", () => {
    const store = join(dir, 'file-b');
    const longExp = `grading experiments of the prostate biopsy cohort ${'with a long description '.repeat(6)}end`;
    const longRun = `a run name long enough for PyYAML to fold it over two lines in meta.yaml ${'x'.repeat(40)} end`;
    mlflowPython(
      `
import json, sys, mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
e = mlflow.create_experiment(sys.argv[2])
with mlflow.start_run(experiment_id=e, run_name=sys.argv[3]) as r:
    mlflow.log_params({"lr": 0.01, "fold": 2}); mlflow.log_metric("val/qwk", 0.75, step=3); mlflow.set_tag("kind", "kept")
with mlflow.start_run(experiment_id=e, run_name="to delete") as d:
    mlflow.log_metric("loss", 1.0)
MlflowClient().delete_run(d.info.run_id)
print(json.dumps([r.info.run_id, d.info.run_id]))`,
      pathToFileURL(store).href,
      longExp,
      longRun,
    );
    expect(
      readFileSync(
        join(
          store,
          new FileStore(store).experimentIds().find((id) => id !== '0')!,
          'meta.yaml',
        ),
        'utf8',
      ),
    ).toMatch(/name: .*\n  \S/);
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [bin, 'runs', ...args, '--tracking-dir', store], { encoding: 'utf8', timeout: 600_000 });
    const listed = JSON.parse(cli('list', '--json').stdout);
    expect(listed.map((r: any) => [r.experimentName, r.runName, r.status])).toEqual([[longExp, longRun, 'FINISHED']]);
    expect(listed[0].params).toEqual({ lr: '0.01', fold: '2' });
    expect(listed[0].metrics).toEqual({ 'val/qwk': 0.75 });
    const all = JSON.parse(cli('list', '--all', '--json').stdout);
    expect(all.map((r: any) => [r.runName, r.lifecycleStage]).sort()).toEqual([
      [longRun, 'active'],
      ['to delete', 'deleted'],
    ]);
    const shown = cli('show', longRun);
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`(${longRun}) in ${longExp}: FINISHED`);
    // gradelab adds to MLflow's experiment instead of making a second one with a cut name.
    const before = new FileStore(store).experimentIds().length;
    return startRun(longExp, 'gradelab run', { trackingDir: store }).then(async (r) => {
      await r.end();
      expect(new FileStore(store).experimentIds().length).toBe(before);
    });
  });

  it("artifacts go to the experiment's own artifact_location, where MLflow lists them", async () => {
    const store = join(dir, 'file-c');
    const location = pathToFileURL(join(dir, 'elsewhere', 'artifacts')).href;
    mlflowPython(
      `import json, sys, mlflow; mlflow.set_tracking_uri(sys.argv[1]); print(json.dumps(mlflow.create_experiment("located", artifact_location=sys.argv[2])))`,
      pathToFileURL(store).href,
      location,
    );
    const run = await startRun('located', 'with artifacts', { trackingDir: store });
    writeFileSync(join(dir, 'report.md'), '# report');
    await run.logArtifact(join(dir, 'report.md'), 'report');
    await run.end();
    const [seen] = mlflowPython<any[]>(READ_ALL, pathToFileURL(store).href).filter((r) => r.run_name === 'with artifacts');
    expect(seen.artifact_uri).toBe(`${location}/${seen.run_id}/artifacts`);
    expect(seen.artifacts).toEqual(['report/report.md']);
    expect(readFileSync(join(dir, 'elsewhere', 'artifacts', seen.run_id, 'artifacts', 'report', 'report.md'), 'utf8')).toBe('# report');
  });
});

describe.skipIf(missingTool(hasMlflow))('a real MLflow 2.9.2 server', () => {
  let server: MlflowServer;
  beforeAll(async () => {
    server = new MlflowServer(join(dir, 'server-store'), await freePort()).start();
  }, 600_000);
  afterAll(() => server?.stop());

  function rest(journal: string): void {
    process.env.MLFLOW_TRACKING_URI = server.url;
    process.env.GRADELAB_JOURNAL_DIR = journal;
  }

  it('what gradelab sends, MLflow reads back: parent ids translated, NaN and infinities, folders, user', async () => {
    rest(join(dir, 'journal-a'));
    const parent = await startRun('gradelab-rest', 'rest run', {});
    await logEverything(parent, join(dir, 'files-rest'));
    await parent.end();
    const runs = mlflowPython<any[]>(READ_ALL, server.url).filter((r) => r.experiment === 'gradelab-rest');
    expectEverything(runs, 'gradelab-rest', 'rest run');
    expect(runs.find((r) => r.run_name === 'rest run').tags['mlflow.user']).toBe(userInfo().username);
  });

  it('a record the server refuses is quarantined: the rest of the run and the runs after it arrive, sync reports it', async () => {
    const journal = join(dir, 'journal-poison');
    rest(journal);
    const run = await startRun('gradelab-poison', 'changed param', {});
    await run.logParams({ lr: 0.1 });
    await run.logParams({ lr: 0.2 }); // MLflow refuses to change a param (2.9.2 answers 500, with its reason)
    await run.logMetrics({ loss: 0.5 }, 0);
    await run.end();
    const after = await startRun('gradelab-poison', 'queued after it', {});
    await after.logMetrics({ loss: 0.25 }, 0);
    await after.end();
    const runs = mlflowPython<any[]>(READ_ALL, server.url).filter((r) => r.experiment === 'gradelab-poison');
    const bad = runs.find((r) => r.run_name === 'changed param');
    expect([bad.status, bad.params, bad.metrics.loss.length]).toEqual(['FINISHED', { lr: '0.1' }, 1]);
    expect(runs.find((r) => r.run_name === 'queued after it').status).toBe('FINISHED');
    const sync = spawnSync(process.execPath, [bin, 'runs', 'sync', '--journal-dir', journal], {
      encoding: 'utf8',
      env: { ...process.env },
      timeout: 600_000,
    });
    expect(sync.status, sync.stderr).toBe(0);
    expect(sync.stdout).toMatch(/0 still pending/);
    expect(sync.stdout).toMatch(
      /1 record the server refused.*\n {2}run [0-9a-f]{32} record \d+ \(batch\): MLflow server answered 500 .*Changing param values is not allowed/,
    );
  });

  it("artifact names MLflow's server refuses are refused when logged, on both stores", async () => {
    writeFileSync(join(dir, 'slide#3.png'), 'x');
    // The real server's answer to such a name: 400, Invalid path.
    const direct = await got.put(`${server.url}/api/2.0/mlflow-artifacts/artifacts/0/x/artifacts/slide%233.png`, {
      body: 'x',
      throwHttpErrors: false,
    });
    expect(direct.statusCode).toBe(400);
    rest(join(dir, 'journal-names'));
    const run = await startRun('gradelab-names', 'bad name', {});
    await expect(run.logArtifact(join(dir, 'slide#3.png'))).rejects.toThrow(/artifact 'slide#3.png' contains '#': MLflow refuses/);
    await run.end();
    delete process.env.MLFLOW_TRACKING_URI;
    const local = await startRun('gradelab-names', 'bad name', { trackingDir: join(dir, 'file-names') });
    await expect(local.logArtifact(join(dir, 'slide#3.png'))).rejects.toThrow(/contains '#'/);
    await local.end();
  });

  it('a run whose process was SIGKILLed is marked FAILED on the server by runs sync, ending at its last metric', async () => {
    const journal = join(dir, 'journal-killed');
    const script = join(dir, 'killed.mts');
    // The child waits until the server has its run and metric (the journal's cursor says so), however
    // long a busy server takes, then dies.
    writeFileSync(
      script,
      [
        "import { readdirSync, readFileSync } from 'node:fs';",
        `import { startRun } from ${JSON.stringify(trackIndex)};`,
        "const run = await startRun('gradelab-killed', 'killed run', {});",
        'await run.logMetrics({ loss: 0.75 }, 4);',
        'const acked = () => readdirSync(process.env.GRADELAB_JOURNAL_DIR).filter((f) => f.endsWith(".state.json")).map((f) => JSON.parse(readFileSync(`${process.env.GRADELAB_JOURNAL_DIR}/${f}`, "utf8")).acked);',
        'while (!(acked()[0] >= 2)) await new Promise((r) => setTimeout(r, 50));',
        "process.kill(process.pid, 'SIGKILL');",
      ].join('\n'),
    );
    const child = spawnSync(process.execPath, [runTs, script], {
      encoding: 'utf8',
      env: { ...process.env, MLFLOW_TRACKING_URI: server.url, GRADELAB_JOURNAL_DIR: journal },
      timeout: 600_000,
    });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const running = mlflowPython<any[]>(READ_ALL, server.url).find((r) => r.run_name === 'killed run');
    expect(running.status).toBe('RUNNING');
    const sync = spawnSync(process.execPath, [bin, 'runs', 'sync', '--journal-dir', journal], {
      encoding: 'utf8',
      env: { ...process.env, MLFLOW_TRACKING_URI: server.url },
      timeout: 600_000,
    });
    expect(sync.status, sync.stderr).toBe(0);
    const reaped = mlflowPython<any[]>(READ_ALL, server.url).find((r) => r.run_name === 'killed run');
    expect(reaped.status).toBe('FAILED');
    expect(reaped.end).toBe(reaped.metrics.loss[0][1]);
  });
});

describe.skipIf(missingTool(hasMlflow))('a real MLflow 2.9.2 server, killed mid-run', () => {
  it('every metric arrives exactly once after the server is SIGKILLed and restarted', async () => {
    const server = new MlflowServer(join(dir, 'killed-store'), await freePort()).start();
    try {
      const store = new JournaledStore(
        new RestStore(server.url, { attempts: 2, backoffMs: 50, timeoutMs: 2000 }),
        join(dir, 'journal-restart'),
      );
      const run = await store.createRun('gradelab-restart', 'through a crash', Date.now(), {});
      for (let i = 0; i < 10; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i / 10, timestamp: 1_000 + i, step: i }] });
      expect(await store.flush()).toBe(0);
      server.stop('KILL');
      for (let i = 10; i < 20; i++) await store.logBatch(run, { metrics: [{ key: 'loss', value: i / 10, timestamp: 1_000 + i, step: i }] });
      await store.updateRun(run, 'FINISHED', 2_000);
      expect(await store.flush()).toBeGreaterThan(0);
      server.start();
      expect(await store.flush()).toBe(0);
      const [seen] = mlflowPython<any[]>(READ_ALL, server.url).filter((r) => r.run_name === 'through a crash');
      expect(seen.metrics.loss.map((m: any[]) => m[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(seen.status).toBe('FINISHED');
    } finally {
      server.stop();
    }
  }, 600_000);
});

describe('journal replay', () => {
  it('an interrupted 3,000-key batch is checked with one request, not one per key', async () => {
    const { FakeMlflow } = await import('./fakeMlflow.ts');
    const fake = await new FakeMlflow().start();
    try {
      const store = new JournaledStore(new RestStore(fake.url, { attempts: 1, backoffMs: 10, timeoutMs: 2000 }), join(dir, 'journal-bulk'));
      const run = await store.createRun('e', 'bulk', 1, {});
      await store.flush();
      fake.dropAfterProcessing = 1; // a 3,000-metric record goes as three requests: the first one's answer is lost
      const mark = fake.requests.length;
      await store.logBatch(run, { metrics: Array.from({ length: 3000 }, (_, i) => ({ key: `m${i}`, value: i, timestamp: 5, step: 0 })) });
      expect(await store.flush()).toBe(0);
      const sent = fake.requests.slice(mark).map((r) => r.path.replace('/api/2.0/mlflow/', ''));
      // Three log-batch requests, the first answer lost; the retry asks once what landed and sends the rest.
      expect(sent).toEqual(['runs/log-batch', 'runs/get', 'runs/log-batch', 'runs/log-batch']);
      expect([...fake.runs.values()][0].metrics).toHaveLength(3000);
    } finally {
      await fake.stop();
    }
  });
});
