import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll } from 'vitest';
import type { RgbImage } from '../src/core/index.ts';

/**
 * Whether a test that needs an external tool (Chromium, OpenSlide, MLflow, clang) skips: only outside
 * CI. Under CI=true .ci/run has installed every tool, so a missing one runs the test and fails it.
 */
export function missingTool(available: boolean): boolean {
  return !available && !process.env.CI;
}

/** A temp folder removed after the test file. */
export function tempDir(prefix = 'gradelab-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A smooth, tissue-coloured test image: slowly varying so JPEG round trips stay within a few grey
 * levels, and with values kept inside the range where RGB-plane JPEG needs no clipping.
 */
export function smoothImage(width: number, height: number, phase = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = 150 + Math.round(25 * Math.sin((x + phase) / 40));
      data[i + 1] = 120 + Math.round(20 * Math.cos(y / 35));
      data[i + 2] = 140 + Math.round(15 * Math.sin((x + y) / 60));
    }
  }
  return { width, height, data };
}

export function maxAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m) m = d;
  }
  return m;
}

export function crop(img: RgbImage, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) out.set(img.data.subarray(((y + r) * img.width + x) * 3, ((y + r) * img.width + x + w) * 3), r * w * 3);
  return out;
}

/** A model description as gradelab train writes it, with the fields a test cares about overridden. */
export function modelMeta(over: Partial<import('../src/core/index.ts').ModelMeta> = {}): import('../src/core/index.ts').ModelMeta {
  return {
    format: 'gradelab-model/1',
    task: 'prostate',
    head: 'softmax',
    classes: [0, 1, 2, 3, 4, 5],
    backbone: 'resnet',
    width: 1,
    inputSize: 32,
    tileSize: 64,
    mpp: 1,
    augment: [],
    normaliser: null,
    seed: 1,
    backend: 'cpu',
    runId: null,
    datasetHash: '',
    configHash: '',
    bestEpoch: 1,
    metrics: {},
    trainedAt: '2026-01-01T00:00:00Z',
    ...over,
  };
}

/**
 * Runs the CLI's entry (`main`, what bin/gradelab.mjs calls) in this process, in `cwd`, capturing what
 * it writes: the same code as a spawned CLI without two seconds of process start-up per call.
 */
export async function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli/main.ts');
  const out: string[] = [];
  const err: string[] = [];
  const writes = [process.stdout.write, process.stderr.write];
  // yargs prints --help and usage through console.log and console.error.
  const consoles = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(`${a.join(' ')}\n`);
  console.error = (...a: unknown[]) => void err.push(`${a.join(' ')}\n`);
  const cwd = process.cwd();
  const saved = Object.fromEntries(Object.keys(options.env ?? {}).map((k) => [k, process.env[k]]));
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  Object.assign(process.env, options.env ?? {});
  if (options.cwd) process.chdir(options.cwd);
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    [process.stdout.write, process.stderr.write] = writes;
    [console.log, console.error] = consoles;
    process.chdir(cwd);
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    process.exitCode = undefined;
  }
}

/** A dataset's tile table as CSV text, exported from its Parquet index (what `gradelab dataset export --format csv` writes). */
export async function tileTableCsv(datasetDir: string): Promise<string> {
  const { exportIndex, INDEX_FILE } = await import('../src/data/index.ts');
  // Removed here, not by tempDir's afterAll: this runs inside tests, where a hook registered is never run.
  const dir = mkdtempSync(join(tmpdir(), 'gradelab-table-'));
  try {
    const out = join(dir, 'tiles.csv');
    await exportIndex(join(datasetDir, INDEX_FILE), out, 'csv');
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every file under a folder, relative path to bytes; `skip` leaves out paths (relative) and what is under them. */
export function filesUnder(top: string, skip: (rel: string) => boolean = () => false): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      const rel = relative(top, p);
      if (skip(rel)) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(rel, readFileSync(p));
    }
  };
  walk(top);
  return out;
}

/** The pids whose claims are in a folder's claims/ now. */
export function claimantPids(out: string): number[] {
  const claims = join(out, 'claims');
  if (!existsSync(claims)) return [];
  return readdirSync(claims)
    .filter((f) => f.endsWith('.claim'))
    .flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(join(claims, f), 'utf8')).pid as number];
      } catch {
        return []; // being written or released right now
      }
    });
}

/**
 * Starts three processes of the CLI with the same arguments on one output folder, waits (on an event,
 * not a time: up to a minute) until the first holds a claim there, kills it with SIGKILL, and returns
 * how each ended.
 */
export async function threeProcessesOneKilled(
  bin: string,
  args: string[],
  out: string,
): Promise<{ code: number | null; signal: string | null; stderr: string }[]> {
  const procs = [0, 1, 2].map(() => spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const exits = procs.map(
    (p) =>
      new Promise<{ code: number | null; signal: string | null; stderr: string }>((done) => {
        let stderr = '';
        p.stderr!.on('data', (b) => (stderr += b));
        p.on('exit', (code, signal) => done({ code, signal, stderr }));
      }),
  );
  const victim = procs[0];
  for (let i = 0; i < 6000 && !claimantPids(out).includes(victim.pid!); i++) await sleep(10);
  const heldClaim = claimantPids(out).includes(victim.pid!);
  victim.kill('SIGKILL');
  const ends = await Promise.all(exits);
  if (!heldClaim) throw new Error(`process ${victim.pid} never held a claim in ${out}`);
  return ends;
}
