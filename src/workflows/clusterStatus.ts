import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClaimBoard, ConfigError } from '../core/index.ts';
import { readSubmissions, type SlurmSubmission } from './slurm.ts';

/** Where the units of one submitted command stand, read from its output folder and the scheduler. */
export interface ClusterCommandStatus {
  command: string;
  submission: SlurmSubmission;
  /** Slides (tile, features) or shards (predict, robustness). */
  unit: 'slides' | 'shards';
  total: number;
  done: number;
  failed: number;
  /** Claims of live workers, and claims whose worker is gone (taken over by the next worker). */
  running: string[];
  stale: string[];
  /** True when the finish has run: the index written, the cache full, the parts merged. */
  finished: boolean;
  /** The scheduler's view of the submission's jobs: task id -> state, or why it cannot say. */
  queue: Record<string, string> | string;
}

function claimsOf(dir: string): { running: string[]; stale: string[] } {
  const running: string[] = [];
  const stale: string[] = [];
  if (!existsSync(dir)) return { running, stale };
  const board = new ClaimBoard(dir, { run: 'status' });
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.claim'))) {
    const key = f.slice(0, -'.claim'.length);
    const owner = board.read(key);
    if (!owner) continue;
    const who = `${key} (${board.describe(key)})`;
    (board.isStale(owner) ? stale : running).push(who);
  }
  return { running, stale };
}

const countFiles = (dir: string, test: (f: string) => boolean) => (existsSync(dir) ? readdirSync(dir).filter(test).length : 0);

/** squeue's states of the array's tasks and the finish; jobs squeue no longer knows have ended. */
function queueOf(s: SlurmSubmission): Record<string, string> | string {
  try {
    const out = execFileSync('squeue', ['-h', '-r', '-j', `${s.arrayJob},${s.finishJob}`, '-o', '%i|%T'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const states: Record<string, string> = {};
    for (const row of out.split('\n').filter(Boolean)) {
      const [id, state] = row.split('|');
      states[id] = state;
    }
    return states;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return 'squeue is not on PATH (not a SLURM login node)';
    // squeue refuses ids it has forgotten (MinJobAge): every job of the submission has ended.
    if (String(e.stderr).includes('Invalid job id')) return {};
    return `squeue failed: ${String(e.stderr ?? e.message).trim()}`;
  }
}

function unitsOf(dir: string, s: SlurmSubmission, recordDir: string): Omit<ClusterCommandStatus, 'command' | 'submission' | 'queue'> {
  if (s.command === 'tile') {
    // Before the first task has started, there is no dataset.json yet: nothing is done.
    const metaPath = join(dir, 'dataset.json');
    const meta = existsSync(metaPath)
      ? (JSON.parse(readFileSync(metaPath, 'utf8')) as { slides: number; complete: boolean })
      : { slides: 0, complete: false };
    return {
      unit: 'slides',
      total: meta.slides,
      done: countFiles(join(dir, 'rows'), (f) => f.endsWith('.csv') && !f.startsWith('.')),
      failed: countFiles(join(dir, 'rows'), (f) => f.endsWith('.failed')),
      ...claimsOf(join(dir, 'claims')),
      finished: meta.complete,
    };
  }
  if (s.command === 'features') {
    // Every encoder's cache in the dataset: the newest submission's is the one being filled.
    const caches = existsSync(join(dir, 'embeddings')) ? readdirSync(join(dir, 'embeddings')).map((k) => join(dir, 'embeddings', k)) : [];
    let total = 0;
    let done = 0;
    const running: string[] = [];
    const stale: string[] = [];
    for (const c of caches.filter((c) => existsSync(join(c, 'index.json')))) {
      total += (JSON.parse(readFileSync(join(c, 'index.json'), 'utf8')) as { slides: number }).slides;
      done += countFiles(c, (f) => /\.f(16|32)$/.test(f) && !f.startsWith('.'));
      const claims = claimsOf(join(c, 'claims'));
      running.push(...claims.running);
      stale.push(...claims.stale);
    }
    return { unit: 'slides', total, done, failed: 0, running, stale, finished: total > 0 && done === total };
  }
  if (s.command === 'heatmap') {
    // The run record names the slides; each mapped slide is a folder with its heatmap.json.
    const runPath = join(dir, 'heatmap-run.json');
    const total = existsSync(runPath) ? ((JSON.parse(readFileSync(runPath, 'utf8')).settings?.slides as number | undefined) ?? 0) : 0;
    const done = readdirSync(dir, { withFileTypes: true }).filter(
      (d) => d.isDirectory() && existsSync(join(dir, d.name, 'heatmap.json')),
    ).length;
    return {
      unit: 'slides',
      total,
      done,
      failed: 0,
      ...claimsOf(join(dir, 'claims')),
      finished: total > 0 && done === total && existsSync(join(dir, 'index.json')),
    };
  }
  const done = countFiles(join(recordDir, 'parts'), (f) => f.endsWith('.done'));
  // The merge writes the predictions file, or the suite's results.json, last.
  const merged = s.command === 'predict' ? s.output : join(s.output, 'results.json');
  return { unit: 'shards', total: s.tasks, done, failed: 0, running: [], stale: [], finished: done === s.tasks && existsSync(merged) };
}

/** Every submission recorded under an output folder (its cluster/ and cluster-FILE/ records), newest per command. */
export function clusterStatus(dir: string): ClusterCommandStatus[] {
  if (!existsSync(dir)) throw new ConfigError(`${dir}: folder not found`);
  const records = readdirSync(dir)
    .filter((f) => f === 'cluster' || f.startsWith('cluster-'))
    .map((f) => join(dir, f))
    .filter((r) => existsSync(join(r, 'submissions.json')));
  if (!records.length)
    throw new ConfigError(`${dir}: no SLURM submission recorded here (gradelab slurm submit keeps its record in ${dir}/cluster)`);
  const statuses: ClusterCommandStatus[] = [];
  for (const recordDir of records) {
    const newest = new Map<string, SlurmSubmission>();
    for (const s of readSubmissions(recordDir)) newest.set(s.command, s);
    for (const s of newest.values()) statuses.push({ command: s.command, submission: s, ...unitsOf(dir, s, recordDir), queue: queueOf(s) });
  }
  return statuses;
}

/** A status as lines for a terminal. */
export function formatClusterStatus(statuses: readonly ClusterCommandStatus[]): string {
  const lines: string[] = [];
  for (const s of statuses) {
    const { arrayJob, finishJob, tasks, submitted } = s.submission;
    lines.push(
      `${s.command}: ${s.finished ? 'finished' : 'not finished'} (array ${arrayJob}, ${tasks} tasks, finish ${finishJob}, submitted ${submitted})`,
    );
    lines.push(
      s.total === 0 && s.done === 0
        ? `  ${s.unit}: no task has started yet`
        : `  ${s.unit}: ${s.done} of ${s.total} done${s.failed ? `, ${s.failed} failed` : ''}, ${s.running.length} running, ${s.stale.length} stale`,
    );
    for (const r of s.running.slice(0, 10)) lines.push(`    running: ${r}`);
    for (const r of s.stale.slice(0, 10)) lines.push(`    stale: ${r} (the next worker takes it over)`);
    if (typeof s.queue === 'string') lines.push(`  queue: ${s.queue}`);
    else {
      const byState = new Map<string, string[]>();
      for (const [id, state] of Object.entries(s.queue)) byState.set(state, [...(byState.get(state) ?? []), id]);
      lines.push(
        byState.size
          ? `  queue: ${[...byState].map(([state, ids]) => `${state.toLowerCase()} ${ids.join(' ')}`).join('; ')}`
          : '  queue: no job of this submission is queued or running',
      );
    }
  }
  return lines.join('\n') + '\n';
}
