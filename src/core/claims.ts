import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InputError } from './errors.ts';
import { tempPathFor } from './atomic.ts';

/**
 * Per-unit claims on a shared output folder, so any number of processes (one machine or many, on a shared
 * file system) can work through the same units (slides) without doing one twice: a claim is a file
 * created exclusively (O_EXCL) under `claims/`, naming its owner (run, host, pid) and refreshed by a
 * heartbeat while the unit is worked on. A claim whose owner is gone (same host, process not alive) or
 * whose heartbeat is older than `staleAfterMs` (another host) is taken over; the unit's half-written
 * output is the caller's to discard (every gradelab unit is committed by one atomic rename at its end).
 */
export interface ClaimOwner {
  /** What the claimant is doing: a command and a digest of its settings. Claims of another run are refused. */
  run: string;
  host: string;
  pid: number;
  started: string;
  heartbeat: string;
  /** The scheduler's job of the process, when a scheduler started it (SLURM: JOBID or ARRAYJOBID_TASK). */
  job?: string;
}

/** The SLURM job this process runs as (array tasks as ARRAYJOBID_TASK, as squeue and scancel name them). */
export function schedulerJob(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID || undefined;
}

export interface ClaimOptions {
  run: string;
  /** A claim whose heartbeat is older than this is another host's dead worker's (default 5 minutes). */
  staleAfterMs?: number;
  /**
   * Whether a scheduler job still runs: false when the scheduler says it ended, undefined when it cannot
   * say (default: SLURM's squeue). Another host's claim whose job has ended is taken over at once.
   */
  jobAlive?: (job: string) => boolean | undefined;
  /** How often a held claim's heartbeat is refreshed (default a quarter of staleAfterMs, at most 30 s). */
  heartbeatMs?: number;
}

export const DEFAULT_STALE_AFTER_MS = 5 * 60_000;

/** squeue's states of a job whose processes may still be working. */
const LIVE_JOB_STATES = new Set(['RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED', 'STOPPED', 'RESIZING', 'SIGNALING', 'STAGE_OUT']);

/**
 * Whether a SLURM job (JOBID or ARRAYJOB_TASK) still runs, by squeue: false when SLURM lists it in no
 * live state or no longer knows it, undefined when squeue is missing or fails otherwise.
 */
export function slurmJobAlive(job: string): boolean | undefined {
  const r = spawnSync('squeue', ['-h', '-j', job, '-o', '%T'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return undefined;
  if (r.status !== 0) return /invalid job id/i.test(r.stderr) ? false : undefined;
  return r.stdout.split('\n').some((state) => LIVE_JOB_STATES.has(state.trim()));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A claim this process holds: its heartbeat runs until release(). */
export class Claim {
  private timer: NodeJS.Timeout;
  constructor(
    private readonly board: ClaimBoard,
    readonly key: string,
    private owner: ClaimOwner,
    heartbeatMs: number,
  ) {
    this.timer = setInterval(() => this.beat(), heartbeatMs);
    this.timer.unref();
  }

  /** Refreshes the heartbeat, unless the claim was taken over (then the owner learns it at release). */
  private beat(): void {
    const current = this.board.read(this.key);
    if (!current || current.pid !== this.owner.pid || current.host !== this.owner.host || current.started !== this.owner.started) return;
    this.owner = { ...this.owner, heartbeat: new Date().toISOString() };
    const path = this.board.path(this.key);
    const tmp = tempPathFor(path);
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, JSON.stringify(this.owner));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }

  /** Ends the claim (the unit is committed, or failed and recorded). */
  release(): void {
    clearInterval(this.timer);
    const current = this.board.read(this.key);
    if (current && current.pid === this.owner.pid && current.host === this.owner.host) rmSync(this.board.path(this.key), { force: true });
  }
}

export class ClaimBoard {
  readonly staleAfterMs: number;
  private readonly heartbeatMs: number;
  /** Scheduler answers, kept 10 s: a worker passing over many claims asks squeue once per job. */
  private readonly jobs = new Map<string, { alive: boolean | undefined; at: number }>();

  constructor(
    readonly dir: string,
    private readonly options: ClaimOptions,
  ) {
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.heartbeatMs = options.heartbeatMs ?? Math.min(30_000, Math.max(50, this.staleAfterMs / 4));
    mkdirSync(dir, { recursive: true });
  }

  path(key: string): string {
    return join(this.dir, `${key}.claim`);
  }

  /** A claim file's owner; undefined when there is none. A file that is not gradelab's claim is one line, exit 2. */
  read(key: string): ClaimOwner | undefined {
    let text: string;
    try {
      text = readFileSync(this.path(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const o = JSON.parse(text) as ClaimOwner;
      if (typeof o.run === 'string' && typeof o.host === 'string' && Number.isInteger(o.pid) && typeof o.heartbeat === 'string') return o;
    } catch {
      // fall through: not a claim
    }
    throw new InputError(`${this.path(key)}: not a gradelab claim file (remove it if no gradelab process is working on this folder)`);
  }

  /**
   * Whether an owner is gone: its process is not alive on this host, its scheduler job has ended (another
   * host's, asked of the scheduler), or its heartbeat is older than staleAfterMs.
   */
  isStale(o: ClaimOwner): boolean {
    const here = o.host === hostname();
    if (here && !alive(o.pid)) return true;
    if (!here && o.job && this.jobAlive(o.job) === false) return true;
    return Date.now() - Date.parse(o.heartbeat) > this.staleAfterMs;
  }

  private jobAlive(job: string): boolean | undefined {
    const known = this.jobs.get(job);
    if (known && Date.now() - known.at < 10_000) return known.alive;
    const answer = (this.options.jobAlive ?? slurmJobAlive)(job);
    this.jobs.set(job, { alive: answer, at: Date.now() });
    return answer;
  }

  /** Refuses, in one line, a folder whose live claims belong to another run (another command or other settings). */
  checkRun(): void {
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.claim')) continue;
      const o = this.read(f.slice(0, -'.claim'.length));
      if (o && o.run !== this.options.run && !this.isStale(o))
        throw new InputError(
          `${this.dir}: ${o.host} pid ${o.pid} is working on this folder with other settings or another command (${o.run}); wait for it, or use another --out`,
        );
    }
  }

  private owner(): ClaimOwner {
    const now = new Date().toISOString();
    const job = schedulerJob();
    return { run: this.options.run, host: hostname(), pid: process.pid, started: now, heartbeat: now, ...(job ? { job } : {}) };
  }

  /**
   * Creates a claim exclusively. The owner is written whole to a temporary file first and then linked to
   * the claim's name (link fails when the name exists, as O_EXCL does): a reader never sees a claim
   * half-written. Opening the claim itself with O_EXCL and then writing it let another worker read it
   * empty in between and refuse the folder as "not a gradelab claim file" (seen once in CI, 4 processes).
   */
  private create(key: string, owner: ClaimOwner): boolean {
    const path = this.path(key);
    const tmp = tempPathFor(path);
    try {
      writeFileSync(tmp, JSON.stringify(owner), { flag: 'wx' });
    } catch (err) {
      // Another process finished and removed the empty folder between two claims.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(this.dir, { recursive: true });
      return this.create(key, owner);
    }
    try {
      linkSync(tmp, path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // removeIfEmpty took the temporary file for a dead process's (another host's pid): write it again.
      if (code === 'ENOENT') return this.create(key, owner);
      throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Claims a unit: creates its claim, or takes over a stale one. Returns undefined when another live
   * process holds it. Taking over renames the stale file aside first (one taker wins the rename) and
   * puts back a claim that turned out fresh (another taker's), so two takers never both proceed.
   */
  tryClaim(key: string): Claim | undefined {
    const owner = this.owner();
    if (this.create(key, owner)) return new Claim(this, key, owner, this.heartbeatMs);
    const seen = this.read(key);
    if (seen && !this.isStale(seen)) return undefined;
    const aside = tempPathFor(this.path(key));
    try {
      renameSync(this.path(key), aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.tryClaim(key);
      throw err;
    }
    const moved = JSON.parse(readFileSync(aside, 'utf8')) as ClaimOwner;
    if (seen && (moved.pid !== seen.pid || moved.host !== seen.host || moved.heartbeat !== seen.heartbeat)) {
      // Not the stale claim judged above: another taker's fresh one. Put it back unless a third took the slot.
      try {
        linkSync(aside, this.path(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      rmSync(aside, { force: true });
      return undefined;
    }
    rmSync(aside, { force: true });
    return this.create(key, owner) ? new Claim(this, key, owner, this.heartbeatMs) : undefined;
  }

  /** Who holds a unit, in words for a status line or an error: 'host pid N (job J), live|stale'. */
  describe(key: string): string | undefined {
    const o = this.read(key);
    if (!o) return undefined;
    return `${o.host} pid ${o.pid}${o.job ? ` (job ${o.job})` : ''}, ${this.isStale(o) ? 'stale' : 'live'}`;
  }

  /** Removes the claims folder once nothing is left in it (the work is finished; another process may still be writing). */
  removeIfEmpty(): void {
    this.removeDeadTemporaries();
    try {
      rmdirSync(this.dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
    }
  }

  /**
   * Temporary claim files a killed process left between writing and linking them: those of a process
   * not alive on this host, or older than staleAfterMs (a live one exists for microseconds).
   */
  private removeDeadTemporaries(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /\.claim\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
      if (!m) continue;
      const path = join(this.dir, name);
      try {
        if (!alive(Number(m[1])) || Date.now() - statSync(path).mtimeMs > this.staleAfterMs) rmSync(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
}
