import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, writeFileAtomic } from '../../core/index.ts';
import { CLUSTER_COMMANDS, planClusterJob } from '../../workflows/clusterJobs.ts';
import { kubernetesYaml } from '../../workflows/kubernetesJobs.ts';

export function kubernetesCommand(y: Argv): Argv {
  return y.command(
    'kubernetes <command> [args..]',
    describeCommand('kubernetes'),
    (c) =>
      c
        .positional('command', { choices: CLUSTER_COMMANDS, demandOption: true, describe: 'the gradelab command each pod runs' })
        .positional('args', { type: 'string', array: true, describe: "the command's own flags, after -- (paths inside the pods)" })
        .option('tasks', { type: 'number', demandOption: true, describe: 'completions of the Indexed Job (pods)' })
        .option('image', { type: 'string', demandOption: true, describe: 'container image with gradelab installed' })
        .option('pvc', { type: 'string', demandOption: true, describe: 'PersistentVolumeClaim the pods share (ReadWriteMany)' })
        .option('mount', { type: 'string', default: '/data', describe: 'where the volume is mounted in the pods' })
        .option('workdir', { type: 'string', default: '/app', describe: "the image's gradelab folder (npx gradelab runs there)" })
        .option('cpu', { type: 'string', describe: 'CPU request per pod (e.g. 8)' })
        .option('memory', { type: 'string', describe: 'memory request per pod (e.g. 16Gi)' })
        .option('name', { type: 'string', describe: 'Job name (default gradelab-COMMAND); the finish is NAME-finish' })
        .option('comment', { type: 'string', default: '', describe: 'lines for the head of the file' })
        .option('out', { type: 'string', describe: 'YAML file to write (default: standard output)' })
        .parserConfiguration({ 'populate--': true }),
    async (argv) => {
      const args = [...((argv.args as string[] | undefined) ?? []), ...((argv['--'] as string[] | undefined) ?? [])].map(String);
      const name = argv.name ?? `gradelab-${argv.command}`;
      if (!/^[a-z0-9]([-a-z0-9]{0,54}[a-z0-9])?$/.test(name))
        throw new ConfigError(`--name ${name}: a Job name is lower-case letters, digits and '-', at most 56 characters`);
      const plan = planClusterJob(argv.command, args, argv.tasks, ['npx', 'gradelab'], { cwd: argv.workdir, checkFiles: false });
      const yaml = kubernetesYaml(
        plan,
        { image: argv.image, pvc: argv.pvc, mountPath: argv.mount, workingDir: argv.workdir, cpu: argv.cpu, memory: argv.memory, name },
        argv.comment,
      );
      if (argv.out) await writeFileAtomic(argv.out, yaml);
      else process.stdout.write(yaml);
    },
  );
}
