import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { log } from '../../core/index.ts';
import { writeReport } from '../../report/index.ts';
import { trackedRun } from '../trackedRun.ts';

export function reportCommand(y: Argv): Argv {
  return y.command(
    'report',
    describeCommand('report'),
    (c) =>
      c
        .option('run', { type: 'string', demandOption: true, describe: 'model directory or training run id' })
        .option('out', { type: 'string', demandOption: true })
        .option('eval', { type: 'string', describe: 'gradelab eval output folder' })
        .option('ood', { type: 'string', describe: 'gradelab ood eval output folder' })
        .option('robustness', { type: 'string', array: true, describe: 'robustness output folders' })
        .option('audit', { type: 'string', describe: 'gradelab audit output folder' })
        .option('compare', { type: 'string', array: true, describe: 'gradelab compare output folders (paired comparisons)' })
        .option('precision', {
          type: 'string',
          array: true,
          describe: 'gradelab precision output folders (repeatability, reproducibility)',
        })
        .option('representation', {
          type: 'string',
          array: true,
          describe: 'gradelab robustness embeddings output folders (site or scanner in the representation)',
        })
        .option('mrmc', { type: 'string', array: true, describe: 'gradelab mrmc output folders (reader studies)' })
        .option('viewer', { type: 'string', array: true, describe: 'viewer exports (gradelab view --export) the worst cases link into' })
        .option('intended-use', {
          type: 'string',
          describe: 'YAML with intendedUse, users, workflowPosition, outOfScope, referenceStandard, limitations',
        })
        .option('tracking-dir', { type: 'string' })
        .option('track', { type: 'boolean', default: true, describe: "record the report as a run under the model's training run" }),
    async (argv) => {
      const { missing } = await writeReport(
        { ...argv, intendedUse: argv['intended-use'], trackingDir: argv['tracking-dir'] },
        (write, modelDir) =>
          trackedRun(
            {
              kind: 'report',
              name: `report ${basename(resolve(modelDir))}`,
              modelDir,
              trackingDir: argv['tracking-dir'],
              track: argv.track,
            },
            async () => {
              await write();
              return { result: undefined, artifacts: ['report.pdf', 'report.json'].map((f) => join(argv.out, f)) };
            },
          ),
      );
      log.info(`report: ${join(argv.out, 'report.html')}, report.pdf, report.json${missing ? ` (${missing} items MISSING)` : ''}`);
    },
  );
}
