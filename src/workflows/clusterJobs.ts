import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../core/index.ts';

/** The commands a cluster array runs: claimants (tile, features, heatmap) or static shards (predict, robustness). */
export const CLUSTER_COMMANDS = ['tile', 'features', 'heatmap', 'predict', 'robustness'] as const;
export type ClusterCommand = (typeof CLUSTER_COMMANDS)[number];

/**
 * One gradelab command spread over N array tasks and a finishing job, as any scheduler runs it (SLURM
 * arrays, Kubernetes Indexed Jobs): the shell lines of task I (1-based, in the variable `I`) and of the
 * finish. tile, features and heatmap tasks are claimants of one folder (core/claims.ts): each works
 * through the slides it can claim and stops; their finish writes the index or checks the cache. predict and
 * robustness tasks take every N-th slide or condition (--shard I/N) into a part of their own, and the
 * finish merges the parts, refusing while one is missing. Every task is idempotent: a resubmitted array
 * redoes only what is not finished.
 */
export interface ClusterJobPlan {
  command: ClusterCommand;
  args: string[];
  tasks: number;
  /** The folder the command fills (the dataset, the output folder, or the predictions file's folder). */
  outputDir: string;
  /** What the finish leaves when all is done: the dataset folder, the predictions file, the suite's folder. */
  output: string;
  /** Scripts, logs, parts and the submission record: `<outputDir>/cluster` (predict: `cluster-FILE` beside the file). */
  recordDir: string;
  /** Shell lines of task I (I set by the scheduler's preamble), after `set -eu`. */
  taskLines: string[];
  /** Shell lines of the finishing job. */
  finishLines: string[];
  /** Where the shards of predict and robustness go; absent for claimants. */
  partsDir?: string;
}

/** Flags the plan sets itself: a user's copy would contradict it. */
const PLANNED_FLAGS = ['--shard', '--claim-only', '--finish'];

/** The value of `--name` in an argument list (`--name V` or `--name=V`); undefined when absent. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}

/** The argument list without `--name V` / `--name=V`. */
function withoutFlag(args: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) i++;
    else if (!args[i].startsWith(`--${name}=`)) out.push(args[i]);
  }
  return out;
}

/** A word for a POSIX shell: bare when it is plainly safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./,:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const line = (words: readonly string[]) => words.map(shellWord).join(' ');

/** What each command needs on its command line, with the files that must exist before anything is submitted. */
const REQUIRED: Record<ClusterCommand, { flags: string[]; existing: string[] }> = {
  tile: { flags: ['manifest', 'out'], existing: ['manifest'] },
  features: { flags: ['data'], existing: ['data'] },
  heatmap: { flags: ['model', 'out'], existing: ['model'] },
  predict: { flags: ['model', 'data', 'out'], existing: ['model', 'data'] },
  robustness: { flags: ['model', 'data', 'suite', 'out'], existing: ['model', 'data', 'suite'] },
};

/**
 * Plans a command as N array tasks and a finish, checking its command line first (one line naming
 * what is wrong, before anything is written or submitted). `gradelab` is how a task starts gradelab
 * (this installation's node and entry point, by absolute path: cluster nodes share the file system).
 */
export function planClusterJob(
  command: string,
  args: readonly string[],
  tasks: number,
  gradelab: readonly string[],
  where: { cwd?: string; checkFiles?: boolean } = {},
): ClusterJobPlan {
  const cwd = where.cwd ?? process.cwd();
  if (!(CLUSTER_COMMANDS as readonly string[]).includes(command))
    throw new ConfigError(`a cluster array runs ${CLUSTER_COMMANDS.join(', ')}; got "${command}"`);
  const cmd = command as ClusterCommand;
  if (!Number.isInteger(tasks) || tasks < 1) throw new ConfigError(`--array must be a whole number of tasks >= 1, got ${tasks}`);
  for (const f of PLANNED_FLAGS)
    if (args.some((a) => a === f || a.startsWith(`${f}=`)))
      throw new ConfigError(`${f} is set by the array itself (one claimant or shard per task); leave it out of the ${cmd} arguments`);
  for (const name of REQUIRED[cmd].flags) if (!flagValue(args, name)) throw new ConfigError(`gradelab ${cmd} on a cluster needs --${name}`);
  // Files on this machine are checked now; a Kubernetes plan names paths inside its pods.
  for (const name of where.checkFiles === false ? [] : REQUIRED[cmd].existing) {
    const path = resolve(cwd, flagValue(args, name)!);
    if (!existsSync(path)) throw new ConfigError(`--${name} ${path}: not found`);
  }
  const run = [...gradelab, cmd];
  if (cmd === 'tile' || cmd === 'features' || cmd === 'heatmap') {
    const outputDir = resolve(cwd, flagValue(args, cmd === 'features' ? 'data' : 'out')!);
    return {
      command: cmd,
      args: [...args],
      tasks,
      outputDir,
      output: outputDir,
      recordDir: join(outputDir, 'cluster'),
      taskLines: [line([...run, ...args, '--claim-only'])],
      finishLines: [line([...run, ...args, '--finish'])],
    };
  }
  const out = resolve(cwd, flagValue(args, 'out')!);
  const outputDir = cmd === 'predict' ? dirname(out) : out;
  const recordDir = join(outputDir, cmd === 'predict' ? `cluster-${basename(out)}` : 'cluster');
  const partsDir = join(recordDir, 'parts');
  const rest = withoutFlag(args, 'out');
  const part = (i: string) => `${shellWord(partsDir)}/shard-${i}${cmd === 'predict' ? '.csv' : ''}`;
  const parts = Array.from({ length: tasks }, (_, i) => part(String(i + 1)));
  const merge = cmd === 'predict' ? [...gradelab, 'predict', 'merge'] : [...gradelab, 'robustness', 'merge'];
  const suite = cmd === 'robustness' ? ['--suite', flagValue(args, 'suite')!] : [];
  return {
    command: cmd,
    args: [...args],
    tasks,
    outputDir,
    output: out,
    recordDir,
    partsDir,
    taskLines: [
      `mkdir -p ${shellWord(partsDir)}`,
      // A shard that finished in an earlier submission is not run again.
      `if [ ! -e ${part('$I')}.done ]; then`,
      `  ${line([...run, ...rest])} --out ${part('$I')} --shard "$I/${tasks}"`,
      `  touch ${part('$I')}.done`,
      'fi',
    ],
    finishLines: [
      'missing=""',
      `for i in $(seq 1 ${tasks}); do [ -e ${part('$i')}.done ] || missing="$missing $i"; done`,
      `if [ -n "$missing" ]; then echo "error: shards$missing of ${tasks} did not finish: submit the array again (finished shards are not redone)" >&2; exit 2; fi`,
      `${line([...merge])} ${parts.join(' ')} ${line([...suite, '--out', out])}`,
    ],
  };
}
