import { userInfo } from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FileStore, pyFloat, validateArtifactPath, validateKey } from '../../src/track/index.ts';
import { tempDir, missingTool } from '../helpers.ts';

/** Whether Debian's Python has a module (a missing one shows the test as skipped, not passed). */
function pythonHas(module: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('MLflow validation rules', () => {
  // MLflow's own test lists (tests/utils/test_validation.py).
  const good = ['a', 'Ab-5_', 'a/b/c', 'a.b.c', '.a', 'b.', 'a..a/._./o_O/.e.', 'a b/c d'];
  const bad = ['', '.', '/', '..', '//', 'a//b', 'a/./b', '/a', 'a/', ':', '\\', './', '/./'];
  it.each(good)('accepts %j', (name) => expect(validateKey('metric', name)).toBe(name));
  it.each(bad)('rejects %j', (name) => expect(() => validateKey('param', name)).toThrow(/invalid param name/));
  it('limits key length to 250', () => {
    expect(() => validateKey('tag', 'a'.repeat(251))).toThrow(/over MLflow's limit of 250/);
  });
  it('keeps artifact paths inside the run', () => {
    expect(validateArtifactPath('plots/roc')).toBe('plots/roc');
    expect(validateArtifactPath('')).toBe('');
    for (const p of ['../x', '/etc', 'a/../../b', 'C:\\x']) expect(() => validateArtifactPath(p)).toThrow(/escape/);
  });
});

describe('pyFloat (Python str(float), as MLflow writes metric values)', () => {
  it.each([
    [1, '1.0'],
    [0.5, '0.5'],
    [-2, '-2.0'],
    [0.1 + 0.2, '0.30000000000000004'],
    [1e-5, '1e-05'],
    [0.0001, '0.0001'],
    [1e16, '1e+16'],
    [123456789012345.0, '123456789012345.0'],
    [1.5e300, '1.5e+300'],
    [NaN, 'nan'],
    [Infinity, 'inf'],
    [0, '0.0'],
  ])('%s -> %s', (v, s) => expect(pyFloat(v)).toBe(s));
});

describe('FileStore layout', () => {
  it('writes MLflow file-store files byte for byte', async () => {
    const root = join(tempDir(), 'mlruns');
    const store = new FileStore(root, () => 1_700_000_000_000);
    const exp = await store.getOrCreateExperiment('gradelab-test');
    expect(exp).toBe('1');
    expect(await store.getOrCreateExperiment('gradelab-test')).toBe('1');
    const url = (p: string) => pathToFileURL(join(root, p)).href;
    expect(readFileSync(join(root, '0', 'meta.yaml'), 'utf8')).toBe(
      `artifact_location: ${url('0')}\ncreation_time: 1700000000000\nexperiment_id: '0'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: Default\n`,
    );
    expect(readFileSync(join(root, '1', 'meta.yaml'), 'utf8')).toBe(
      `artifact_location: ${url('1')}\ncreation_time: 1700000000000\nexperiment_id: '1'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: gradelab-test\n`,
    );
    expect(existsSync(join(root, '.trash'))).toBe(true);

    const run = await store.createRun(exp, 'resnet-fold0', 1_700_000_000_123, { 'mlflow.user': 'tester' });
    await store.logBatch(run, {
      metrics: [
        { key: 'val/qwk', value: 0.8125, timestamp: 1_700_000_000_500, step: 1 },
        { key: 'loss', value: 2, timestamp: 1_700_000_000_501, step: 0 },
      ],
      params: { lr: '0.001', 'model/backbone': 'resnet' },
      tags: { 'gradelab.seed': '1' },
    });
    await store.logBatch(run, { metrics: [{ key: 'val/qwk', value: 0.85, timestamp: 1_700_000_000_900, step: 2 }] });
    await store.updateRun(run, 'FINISHED', 1_700_000_001_000);
    const dir = join(root, exp, run);
    expect(readFileSync(join(dir, 'meta.yaml'), 'utf8')).toBe(
      `artifact_uri: ${url(`1/${run}/artifacts`)}\ndeleted_time: null\nend_time: 1700000001000\nentry_point_name: ''\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: ${run}\nrun_name: resnet-fold0\nrun_uuid: ${run}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000123\nstatus: 3\ntags: []\nuser_id: ${userInfo().username}\n`,
    );
    expect(readFileSync(join(dir, 'metrics', 'val', 'qwk'), 'utf8')).toBe('1700000000500 0.8125 1\n1700000000900 0.85 2\n');
    expect(readFileSync(join(dir, 'metrics', 'loss'), 'utf8')).toBe('1700000000501 2.0 0\n');
    expect(readFileSync(join(dir, 'params', 'lr'), 'utf8')).toBe('0.001');
    expect(readFileSync(join(dir, 'params', 'model', 'backbone'), 'utf8')).toBe('resnet');
    expect(readFileSync(join(dir, 'tags', 'mlflow.runName'), 'utf8')).toBe('resnet-fold0');
    expect(readFileSync(join(dir, 'tags', 'gradelab.seed'), 'utf8')).toBe('1');

    const summary = store.getRun(run);
    expect(summary.status).toBe('FINISHED');
    expect(summary.metrics).toEqual({ 'val/qwk': 0.85, loss: 2 });
    expect(summary.params).toEqual({ lr: '0.001', 'model/backbone': 'resnet' });
  });

  it.skipIf(missingTool(pythonHas('yaml')))('meta.yaml is YAML that Python reads to the values MLflow expects', async () => {
    const root = join(tempDir(), 'mlruns');
    const store = new FileStore(root);
    const run = await store.createRun('0', "it's: a #name", 5, {});
    const out = execFileSync(
      '/usr/bin/python3',
      ['-c', `import yaml,json,sys; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))`, join(root, '0', run, 'meta.yaml')],
      { encoding: 'utf8' },
    );
    const meta = JSON.parse(out);
    expect(meta.run_name).toBe("it's: a #name");
    expect(meta.experiment_id).toBe('0');
    expect(meta.status).toBe(1);
    expect(meta.end_time).toBeNull();
    expect(meta.tags).toEqual([]);
  });

  it('params cannot change, as in MLflow; artifacts stay in the run', async () => {
    const dir = tempDir();
    const store = new FileStore(join(dir, 'mlruns'));
    const run = await store.createRun('0', 'r', 1, {});
    await store.logBatch(run, { params: { a: '1' } });
    await store.logBatch(run, { params: { a: '1' } });
    await expect(store.logBatch(run, { params: { a: '2' } })).rejects.toThrow(/already logged as '1'/);
    writeFileSync(join(dir, 'report.txt'), 'hello');
    await store.logArtifact(run, join(dir, 'report.txt'), 'reports');
    expect(readFileSync(join(dir, 'mlruns', '0', run, 'artifacts', 'reports', 'report.txt'), 'utf8')).toBe('hello');
    await expect(store.logArtifact(run, join(dir, 'report.txt'), '../../x')).rejects.toThrow(/escape/);
  });
});
