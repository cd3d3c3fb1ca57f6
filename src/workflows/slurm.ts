import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, writeFileAtomic } from '../core/index.ts';
import { shellWord, type ClusterJobPlan } from './clusterJobs.ts';

/** Resources of each array task (sbatch's own flags; absent ones are the cluster's defaults). */
export interface SlurmResources {
  partition?: string;
  /** Wall-clock limit per task, as sbatch reads it (e.g. 2:00:00). */
  time?: string;
  cpus?: number;
  /** Memory per task, as sbatch reads it (e.g. 16G). */
  mem?: string;
  /** Extra sbatch arguments, one per entry (e.g. --account=lab, --gres=gpu:1). */
  extra?: string[];
}

/** One submission as the record keeps it (cluster/submissions.json, newest last). */
export interface SlurmSubmission {
  submitted: string;
  command: string;
  args: string[];
  tasks: number;
  /** What the finish leaves when all is done (absolute): the dataset folder, the predictions file, the suite's folder. */
  output: string;
  arrayJob: string;
  finishJob: string;
  arrayScript: string;
  finishScript: string;
}

export const SUBMISSIONS_FILE = 'submissions.json';

function directives(plan: ClusterJobPlan, r: SlurmResources, name: string, output: string, cwd: string): string[] {
  return [
    `#SBATCH --job-name=${name}`,
    `#SBATCH --output=${output}`,
    `#SBATCH --chdir=${cwd}`,
    ...(r.partition ? [`#SBATCH --partition=${r.partition}`] : []),
    ...(r.time ? [`#SBATCH --time=${r.time}`] : []),
    ...(r.mem ? [`#SBATCH --mem=${r.mem}`] : []),
    ...(r.extra ?? []).map((e) => `#SBATCH ${e}`),
  ];
}

/**
 * The two sbatch scripts of a plan: the array (task I = SLURM_ARRAY_TASK_ID + 1) and the finish, which
 * sbatch runs after every task has ended, however it ended (--dependency=afterany on the array).
 */
export function slurmScripts(plan: ClusterJobPlan, r: SlurmResources, cwd: string): { array: string; finish: string } {
  // #SBATCH lines are not shell: a path with white space in them would be cut.
  for (const [what, path] of [
    ['the output folder', plan.recordDir],
    ['the working folder', cwd],
  ])
    if (/\s/.test(path)) throw new ConfigError(`${what} ${path} has white space, which #SBATCH lines cannot hold: use a path without`);
  const logs = join(plan.recordDir, 'logs');
  const header = (what: string) => [
    '#!/bin/bash',
    `# gradelab ${plan.command} ${what}, written by \`gradelab slurm submit\`: ${plan.args.map(shellWord).join(' ')}`,
  ];
  const array = [
    ...header(`over ${plan.tasks} array tasks`),
    ...directives(plan, r, `gradelab-${plan.command}`, `${logs}/${plan.command}-%A_%a.out`, cwd),
    `#SBATCH --array=0-${plan.tasks - 1}`,
    ...(r.cpus ? [`#SBATCH --cpus-per-task=${r.cpus}`] : []),
    'set -eu',
    'I=$((SLURM_ARRAY_TASK_ID + 1))',
    ...plan.taskLines,
    '',
  ];
  const finish = [
    ...header('finish (after every array task)'),
    ...directives(plan, r, `gradelab-${plan.command}-finish`, `${logs}/${plan.command}-finish-%j.out`, cwd),
    'set -eu',
    ...plan.finishLines,
    '',
  ];
  return { array: array.join('\n'), finish: finish.join('\n') };
}

/** Submits a script (read by sbatch from its standard input); a missing sbatch or its refusal is one line with sbatch's own message (exit 2). */
function sbatch(args: string[], script: string): string {
  try {
    const out = execFileSync('sbatch', ['--parsable', ...args], { encoding: 'utf8', input: script, stdio: ['pipe', 'pipe', 'pipe'] });
    const id = out.trim().split(';')[0];
    if (!/^\d+$/.test(id)) throw new ConfigError(`sbatch answered "${out.trim()}", not a job id`);
    return id;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new ConfigError('sbatch is not on PATH: submit from a SLURM login node (--dry-run prints the scripts without submitting)');
    const said = String(e.stderr ?? e.message)
      .trim()
      .split('\n')
      .filter(Boolean)
      .pop();
    throw new ConfigError(`sbatch refused the job: ${said ?? 'no message'}`);
  }
}

export function readSubmissions(recordDir: string): SlurmSubmission[] {
  const path = join(recordDir, SUBMISSIONS_FILE);
  if (!existsSync(path)) return [];
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (Array.isArray(parsed)) return parsed as SlurmSubmission[];
  } catch {
    // fall through
  }
  throw new ConfigError(`${path}: not gradelab's record of SLURM submissions`);
}

/**
 * Writes the plan's scripts beside its output (kept for the record) and submits the array, then the
 * finish with --dependency=afterany on it. Returns the submission, also appended to submissions.json.
 */
export async function submitSlurm(plan: ClusterJobPlan, r: SlurmResources, cwd = process.cwd()): Promise<SlurmSubmission> {
  const scripts = slurmScripts(plan, r, cwd);
  const previous = readSubmissions(plan.recordDir);
  // The log folder must exist before a task starts; the scripts are kept once SLURM has taken them.
  const logs = join(plan.recordDir, 'logs');
  const madeLogs = !existsSync(logs);
  mkdirSync(logs, { recursive: true });
  let arrayJob: string | undefined;
  let finishJob: string;
  try {
    arrayJob = sbatch([], scripts.array);
    finishJob = sbatch([`--dependency=afterany:${arrayJob}`], scripts.finish);
  } catch (err) {
    // Nothing is left that looks submitted: an array without its finish is cancelled.
    if (arrayJob) spawnSync('scancel', [arrayJob]);
    if (madeLogs) rmSync(previous.length ? logs : plan.recordDir, { recursive: true, force: true });
    throw err;
  }
  const arrayScript = join(plan.recordDir, `${plan.command}-array.sbatch`);
  const finishScript = join(plan.recordDir, `${plan.command}-finish.sbatch`);
  await writeFileAtomic(arrayScript, scripts.array);
  await writeFileAtomic(finishScript, scripts.finish);
  const submission: SlurmSubmission = {
    submitted: new Date().toISOString(),
    command: plan.command,
    args: plan.args,
    tasks: plan.tasks,
    output: plan.output,
    arrayJob,
    finishJob,
    arrayScript,
    finishScript,
  };
  await writeFileAtomic(join(plan.recordDir, SUBMISSIONS_FILE), JSON.stringify([...previous, submission], null, 2));
  return submission;
}
