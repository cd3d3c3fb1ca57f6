import type { Argv } from 'yargs';
import { fileURLToPath } from 'node:url';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError } from '../../core/index.ts';
import { CLUSTER_COMMANDS, planClusterJob } from '../../workflows/clusterJobs.ts';
import { slurmScripts, submitSlurm } from '../../workflows/slurm.ts';
import { clusterStatus, formatClusterStatus } from '../../workflows/clusterStatus.ts';
import { printJson } from '../output.ts';

/** How a task starts this gradelab: this node, this entry point, by absolute path (nodes share the file system). */
function gradelabInvocation(): string[] {
  return [process.execPath, fileURLToPath(new URL('../../../bin/gradelab.mjs', import.meta.url))];
}

export function slurmCommand(y: Argv): Argv {
  return y.command('slurm', describeCommand('slurm'), (s) =>
    s
      .command(
        'submit <command> [args..]',
        `Submit ${CLUSTER_COMMANDS.join(', ')} as a SLURM array (one claimant or shard per task) and a finish that runs after it`,
        (c) =>
          c
            .positional('command', { choices: CLUSTER_COMMANDS, demandOption: true, describe: 'the gradelab command each task runs' })
            .positional('args', { type: 'string', array: true, describe: "the command's own flags, after --" })
            .option('array', { type: 'number', demandOption: true, describe: 'number of array tasks' })
            .option('partition', { type: 'string', describe: 'sbatch --partition' })
            .option('time', { type: 'string', describe: 'wall-clock limit per task (sbatch --time, e.g. 2:00:00)' })
            .option('cpus', { type: 'number', describe: 'CPUs per task (sbatch --cpus-per-task)' })
            .option('mem', { type: 'string', describe: 'memory per task (sbatch --mem, e.g. 16G)' })
            .option('sbatch-arg', { type: 'string', array: true, describe: 'another sbatch flag for both jobs (e.g. --account=lab)' })
            .option('dry-run', { type: 'boolean', default: false, describe: 'print the two scripts; submit and write nothing' })
            .parserConfiguration({ 'populate--': true }),
        async (argv) => {
          const args = [...((argv.args as string[] | undefined) ?? []), ...((argv['--'] as string[] | undefined) ?? [])].map(String);
          if (argv.cpus !== undefined && !(Number.isInteger(argv.cpus) && argv.cpus >= 1))
            throw new ConfigError(`--cpus must be a whole number >= 1, got ${argv.cpus}`);
          const plan = planClusterJob(argv.command, args, argv.array, gradelabInvocation());
          const resources = { partition: argv.partition, time: argv.time, cpus: argv.cpus, mem: argv.mem, extra: argv['sbatch-arg'] };
          if (argv['dry-run']) {
            const scripts = slurmScripts(plan, resources, process.cwd());
            process.stdout.write(`${scripts.array}\n# --- then, with --dependency=afterany on the array:\n${scripts.finish}`);
            return;
          }
          const sub = await submitSlurm(plan, resources);
          process.stdout.write(
            `submitted ${plan.command} as array job ${sub.arrayJob} (${plan.tasks} tasks) and finish job ${sub.finishJob}; scripts and logs in ${plan.recordDir}\n` +
              `follow it with: gradelab slurm status ${plan.outputDir}\n`,
          );
        },
      )
      .command(
        'status <dir>',
        'What a submission has done: slides or shards done, running, stale and failed, and its jobs in the queue',
        (c) =>
          c
            .positional('dir', { type: 'string', demandOption: true, describe: 'the output folder given to slurm submit' })
            .option('json', { type: 'boolean', default: false }),
        (argv) => {
          const statuses = clusterStatus(argv.dir);
          if (argv.json) return printJson(statuses);
          process.stdout.write(formatClusterStatus(statuses));
        },
      )
      .demandCommand(1, 'name a subcommand: submit or status'),
  );
}
