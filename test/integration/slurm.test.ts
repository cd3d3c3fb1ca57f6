import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClaimBoard } from '../../src/core/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { filesUnder, missingTool, tempDir } from '../helpers.ts';

// A real single-node SLURM (.ci/slurm-up starts it in CI): sbatch arrays, afterany dependencies, scancel.
const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const vit = join(root, 'experiments', 'encoders', 'vit-tiny.onnx');
const slurmUp = spawnSync('sinfo', ['-h'], { encoding: 'utf8' }).status === 0;
const dir = tempDir();
let manifest = '';
const tiling = ['--tile-size', '32', '--mpp', '0.5', '--min-tissue', '0.3'];
const embed = (data: string) => ['--backbone', vit, '--input-size', '64', '--mpp', '0.5', '--data', data, '--dtype', 'float32'];

function gradelab(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const queued = (jobs: string) => execFileSync('squeue', ['-h', '-r', '-j', jobs, '-o', '%i'], { encoding: 'utf8' }).trim();

/** Waits (on events, with a generous guard against a hang) until none of the jobs is queued or running. */
async function waitForJobs(jobs: string): Promise<void> {
  for (let i = 0; i < 3000 && queued(jobs); i++) await sleep(100);
  expect(queued(jobs), `jobs ${jobs} still queued`).toBe('');
}

function submit(...args: string[]): { arrayJob: string; finishJob: string } {
  const r = gradelab('slurm', 'submit', ...args);
  expect(r.code, r.stderr).toBe(0);
  const m = /array job (\d+) \(\d+ tasks\) and finish job (\d+)/.exec(r.stdout)!;
  return { arrayJob: m[1], finishJob: m[2] };
}

/** The live claims under a folder: claim key -> { pid, job }. */
function claims(folder: string): Map<string, { pid: number; job?: string }> {
  const out = new Map<string, { pid: number; job?: string }>();
  if (!existsSync(folder)) return out;
  for (const f of readdirSync(folder).filter((f) => f.endsWith('.claim'))) {
    try {
      out.set(f, JSON.parse(readFileSync(join(folder, f), 'utf8')));
    } catch {
      // being written or released right now
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every line of every task log of a record folder. */
const logLines = (record: string) =>
  readdirSync(join(record, 'logs')).flatMap((f) => readFileSync(join(record, 'logs', f), 'utf8').split('\n'));

beforeAll(async () => {
  if (missingTool(slurmUp)) return;
  ({ manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 6,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0,
    seed: 5,
  }));
  const single = join(dir, 'single');
  for (const args of [
    ['tile', '--manifest', manifest, '--out', single, ...tiling],
    ['features', ...embed(single)],
  ]) {
    const r = gradelab(...args);
    expect(r.code, r.stderr).toBe(0);
  }
}, 600_000);

describe.skipIf(missingTool(slurmUp))('SLURM arrays on a real single-node SLURM', () => {
  it("4 tasks tile a cohort, one cancelled mid-slide and resubmitted: the dataset is byte for byte a single process's, no slide tiled twice", async () => {
    const out = join(dir, 'arrayed');
    const tile = ['tile', '--array', '4', '--', '--manifest', manifest, '--out', out, ...tiling];
    const first = submit(...tile);
    // Catch a task holding a slide and freeze it there (SIGSTOP): it is mid-slide for as long as the test needs.
    let victim: { pid: number; job: string } | undefined;
    for (let i = 0; i < 6000 && !victim; i++) {
      for (const c of claims(join(out, 'claims')).values()) {
        if (!c.job) continue;
        process.kill(c.pid, 'SIGSTOP');
        if ([...claims(join(out, 'claims')).values()].some((d) => d.pid === c.pid)) victim = { pid: c.pid, job: c.job };
        else process.kill(c.pid, 'SIGCONT');
        break;
      }
      if (!victim) await sleep(10);
    }
    expect(victim, 'no task was caught holding a slide').toBeDefined();
    // The other tasks finish every slide they can claim and end; then the frozen task is cancelled.
    const others = Array.from({ length: 4 }, (_, t) => `${first.arrayJob}_${t}`).filter((j) => j !== victim!.job);
    await waitForJobs(others.join(','));
    execFileSync('scancel', [victim!.job]);
    await waitForJobs(`${first.arrayJob},${first.finishJob}`);
    // The finish refused the unfinished folder in one line (the cancelled task may still be dying when it
    // looks: its claim then reads live), and status, once the task's process is gone, shows a stale claim.
    const finishLog = readFileSync(join(out, 'cluster', 'logs', `tile-finish-${first.finishJob}.out`), 'utf8');
    expect(finishLog).toMatch(/1 of 6 slides are not tiled yet: \S+ \(\S+ pid \d+ \(job \d+_\d\), (live|stale)\)/);
    for (let i = 0; i < 3000 && alive(victim!.pid); i++) await sleep(100);
    expect(alive(victim!.pid), 'the cancelled task is still running').toBe(false);
    expect(existsSync(join(out, 'tiles.parquet'))).toBe(false);
    const status = gradelab('slurm', 'status', out);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/tile: not finished/);
    expect(status.stdout).toMatch(/slides: 5 of 6 done, 0 running, 1 stale/);

    const second = submit(...tile);
    await waitForJobs(`${second.arrayJob},${second.finishJob}`);
    const after = gradelab('slurm', 'status', out, '--json');
    const [report] = JSON.parse(after.stdout);
    expect(report).toMatchObject({ command: 'tile', finished: true, done: 6, total: 6, stale: [], running: [] });
    // Each slide was tiled by exactly one task across both submissions (the frozen one's slide by the second).
    const tiled = logLines(join(out, 'cluster'))
      .map((l) => /tiled (\S+): \d+ tiles/.exec(l)?.[1])
      .filter(Boolean)
      .sort();
    expect(new Set(tiled).size).toBe(6);
    expect(tiled).toHaveLength(6);
    const single = filesUnder(join(dir, 'single'), (rel) => rel === 'embeddings');
    const arrayed = filesUnder(out, (rel) => rel === 'cluster');
    expect([...arrayed.keys()].sort()).toEqual([...single.keys()].sort());
    for (const [f, bytes] of single) expect(arrayed.get(f)!.equals(bytes), f).toBe(true);
  }, 600_000);

  it("another node's claim is taken over as soon as SLURM says its job has ended, not after --stale-after", async () => {
    const board = new ClaimBoard(join(dir, 'claims-elsewhere'), { run: 'r' });
    const write = (job?: string) => {
      const now = new Date().toISOString();
      writeFileSync(board.path('k'), JSON.stringify({ run: 'r', host: 'node-elsewhere', pid: 1, started: now, heartbeat: now, job }));
    };
    // Its log goes to the test's folder (sbatch's default is slurm-JOB.out in the working directory).
    const running = execFileSync('sbatch', ['--parsable', '--output', join(dir, 'sleep-%j.out'), '--wrap', 'sleep 120'], {
      encoding: 'utf8',
    }).trim();
    try {
      for (let i = 0; i < 600 && execFileSync('squeue', ['-h', '-j', running, '-o', '%T'], { encoding: 'utf8' }).trim() !== 'RUNNING'; i++)
        await sleep(100);
      // A fresh heartbeat and a running job (or no job to ask about): the claim stands.
      write(running);
      expect(new ClaimBoard(board.dir, { run: 'r' }).tryClaim('k')).toBeUndefined();
      write(undefined);
      expect(new ClaimBoard(board.dir, { run: 'r' }).tryClaim('k')).toBeUndefined();
    } finally {
      execFileSync('scancel', [running]);
    }
    await waitForJobs(running);
    // The same claim once its job has ended: taken over at once, heartbeat fresh or not.
    write(running);
    const taken = new ClaimBoard(board.dir, { run: 'r' }).tryClaim('k');
    expect(taken).toBeDefined();
    taken!.release();
  });

  it("a partition the cluster does not have: sbatch's own refusal in one line, exit 2, nothing recorded", () => {
    const out = join(dir, 'refused');
    const r = gradelab(
      'slurm',
      'submit',
      'tile',
      '--array',
      '2',
      '--partition',
      'no-such-partition',
      '--',
      '--manifest',
      manifest,
      '--out',
      out,
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^gradelab: sbatch refused the job: sbatch: error: .*[Ii]nvalid partition/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(out, 'cluster'))).toBe(false);
  });

  it('4 tasks embed the tiled cohort with a frozen encoder: every slide once, the embeddings a single process computes', async () => {
    const data = join(dir, 'arrayed');
    const job = submit('features', '--array', '4', '--', ...embed(data));
    await waitForJobs(`${job.arrayJob},${job.finishJob}`);
    const record = join(data, 'cluster');
    expect(readFileSync(join(record, 'logs', `features-finish-${job.finishJob}.out`), 'utf8')).toMatch(
      /0 slides embedded .* holds 6 of 6 slides/,
    );
    const embedded = logLines(record)
      .flatMap((l) => /^embedded ([^ ,]+(?:, [^ ,]+)*)$/.exec(l)?.[1].split(', ') ?? [])
      .sort();
    expect(embedded).toHaveLength(6);
    expect(new Set(embedded).size).toBe(6);
    const single = filesUnder(join(dir, 'single', 'embeddings'));
    const arrayed = filesUnder(join(data, 'embeddings'));
    expect([...arrayed.keys()].sort()).toEqual([...single.keys()].sort());
    for (const [f, bytes] of single) {
      if (!f.endsWith('.f32')) continue;
      const a = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      const b = arrayed.get(f)!;
      const c = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - c[i]));
      // ONNX Runtime's batches differ between one process and four: sums in another order.
      expect(worst, f).toBeLessThan(1e-4);
    }
  }, 600_000);
});
