import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Job } from 'kubernetes-models/batch/v1';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { planClusterJob, shellWord } from '../../src/workflows/clusterJobs.ts';
import { kubernetesJobs } from '../../src/workflows/kubernetesJobs.ts';
import { slurmScripts } from '../../src/workflows/slurm.ts';
import { runCli, tempDir } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = tempDir();

describe('cluster job plans', () => {
  it('shell words survive a real shell unchanged, whatever they hold', () => {
    const words = ['plain', 'two words', "it's", 'a"b', '$HOME', '`id`', 'x\ny', '*', '', 'semi;colon', '--flag=v a l'];
    const echoed = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${words.map(shellWord).join(' ')}`], { encoding: 'utf8' });
    expect(echoed.split('\0').slice(0, -1)).toEqual(words);
  });

  it("a predict plan's finish refuses, in one line and exit 2, while a shard has not finished; the task skips a finished shard", () => {
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true });
    const plan = planClusterJob('predict', ['--model', data, '--data', data, '--out', join(dir, 'p', 'all.csv')], 3, ['false']);
    mkdirSync(plan.partsDir!, { recursive: true });
    writeFileSync(join(plan.partsDir!, 'shard-2.csv.done'), '');
    const finish = spawnSync('/bin/sh', ['-c', plan.finishLines.join('\n')], { encoding: 'utf8' });
    expect(finish.status).toBe(2);
    expect(finish.stderr.trim()).toBe('error: shards 1 3 of 3 did not finish: submit the array again (finished shards are not redone)');
    // Task 2 is done: its lines do not run the command (here `false`, which would fail the task).
    const task = spawnSync('/bin/sh', ['-c', ['set -eu', 'I=2', ...plan.taskLines].join('\n')], { encoding: 'utf8' });
    expect(task.status, task.stderr).toBe(0);
    const again = spawnSync('/bin/sh', ['-c', ['set -eu', 'I=1', ...plan.taskLines].join('\n')], { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(existsSync(join(plan.partsDir!, 'shard-1.csv.done'))).toBe(false);
  });

  it('the SLURM scripts are an array of N tasks numbered from 1 and a finish; a path with white space is refused', () => {
    const plan = planClusterJob('tile', ['--manifest', join(root, 'package.json'), '--out', join(dir, 't')], 4, ['gradelab']);
    const { array, finish } = slurmScripts(plan, { partition: 'cpu', time: '1:00:00', cpus: 2, mem: '4G' }, '/work');
    expect(array).toContain('#SBATCH --array=0-3');
    expect(array).toContain('#SBATCH --cpus-per-task=2');
    expect(array).toContain('I=$((SLURM_ARRAY_TASK_ID + 1))');
    expect(array).toMatch(/gradelab tile --manifest \S+ --out \S+ --claim-only$/m);
    expect(finish).toMatch(/gradelab tile --manifest \S+ --out \S+ --finish$/m);
    expect(finish).not.toContain('--array');
    // Heatmaps: claimants of the output folder, as tiling is; the folder is named, not the default.
    const maps = planClusterJob('heatmap', ['--model', root, '--manifest', join(root, 'package.json'), '--out', join(dir, 'maps')], 3, [
      'gradelab',
    ]);
    expect([maps.outputDir, maps.taskLines, maps.finishLines]).toEqual([
      join(dir, 'maps'),
      [`gradelab heatmap --model ${root} --manifest ${join(root, 'package.json')} --out ${join(dir, 'maps')} --claim-only`],
      [`gradelab heatmap --model ${root} --manifest ${join(root, 'package.json')} --out ${join(dir, 'maps')} --finish`],
    ]);
    expect(() => planClusterJob('heatmap', ['--model', root, '--manifest', 'm.csv'], 3, ['gradelab'])).toThrow(
      /^gradelab heatmap on a cluster needs --out$/,
    );
    const spaced = planClusterJob('tile', ['--manifest', join(root, 'package.json'), '--out', join(dir, 'a b')], 2, ['gradelab']);
    expect(() => slurmScripts(spaced, {}, '/work')).toThrow(/white space, which #SBATCH lines cannot hold/);
  });

  it("the shipped Kubernetes manifests are the generator's output and valid batch/v1 Jobs by Kubernetes' own schema", async () => {
    const shipped = ['tile', 'features', 'predict', 'robustness'].map((c) => join(root, 'deploy', 'k8s', `${c}-indexed-job.yaml`));
    for (const file of shipped) {
      const text = readFileSync(file, 'utf8');
      const docs = parseAllDocuments(text).map((d) => d.toJS());
      expect(docs).toHaveLength(2);
      for (const doc of docs) expect(() => new Job(doc).validate(), file).not.toThrow();
      expect(docs[0].spec.completionMode).toBe('Indexed');
      // Regenerate from the command line its header records (and the flags the test fixes): the same bytes.
      const made = /^# Made by gradelab kubernetes (\S+) --tasks (\d+) .* for: (.*)$/m.exec(text)!;
      const comment = text.split('\n# Made by')[0].replace(/^# ?/gm, '');
      const c = docs[0].spec.template.spec.containers[0];
      const out = join(dir, `${made[1]}.yaml`);
      const r = await runCli([
        'kubernetes',
        made[1],
        '--tasks',
        made[2],
        '--image',
        c.image,
        '--pvc',
        docs[0].spec.template.spec.volumes[0].persistentVolumeClaim.claimName,
        '--cpu',
        c.resources.requests.cpu,
        '--memory',
        c.resources.requests.memory,
        '--name',
        docs[0].metadata.name,
        '--comment',
        comment,
        '--out',
        out,
        '--',
        ...made[3].split(' '),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(out, 'utf8'), file).toBe(text);
    }
    // The schema check can fail: a Job with a bad field is refused.
    const plan = planClusterJob('tile', ['--manifest', '/d/m.csv', '--out', '/d/t'], 2, ['npx', 'gradelab'], { checkFiles: false });
    const [job] = kubernetesJobs(plan, { image: 'i', pvc: 'p', mountPath: '/d', workingDir: '/app', name: 'n' });
    expect(() => new Job({ ...job, spec: { ...(job.spec as object), completions: 'two' } } as never).validate()).toThrow(
      /completions must be integer/,
    );
  });

  it('without sbatch on PATH, or when sbatch refuses, submit is one line with exit 2 and records nothing', async () => {
    const out = join(dir, 'nosbatch');
    const args = ['slurm', 'submit', 'tile', '--array', '2', '--', '--manifest', join(root, 'package.json'), '--out', out];
    const missing = await runCli(args, { env: { PATH: join(dir, 'empty-bin') } });
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(
      'gradelab: sbatch is not on PATH: submit from a SLURM login node (--dry-run prints the scripts without submitting)',
    );
    // A stand-in that refuses as sbatch does (the real refusal is in test/integration/slurm.test.ts).
    const bin = join(dir, 'refusing-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'sbatch'), '#!/bin/sh\necho "sbatch: error: Batch job submission failed: Invalid account" >&2\nexit 1\n');
    chmodSync(join(bin, 'sbatch'), 0o755);
    const refused = await runCli(args, { env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe('gradelab: sbatch refused the job: sbatch: error: Batch job submission failed: Invalid account');
    expect(existsSync(join(out, 'cluster', 'submissions.json'))).toBe(false);
    const dry = await runCli([...args.slice(0, 5), '--dry-run', ...args.slice(5)]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('#SBATCH --array=0-1');
    expect(dry.stdout).toContain('# --- then, with --dependency=afterany on the array:');
    expect(existsSync(join(out, 'cluster'))).toBe(false);
  });
});
