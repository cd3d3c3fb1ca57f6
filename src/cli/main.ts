import yargs from 'yargs';
import { isUserError } from '../core/index.ts';
import { auditCommand } from './commands/audit.ts';
import { augmentCommand } from './commands/augment.ts';
import { datasetCommand } from './commands/dataset.ts';
import { demoCommand } from './commands/demo.ts';
import { slideCommand } from './commands/slide.ts';
import { metricsCommand } from './commands/metrics.ts';
import { milCommand } from './commands/mil.ts';
import { oodCommand } from './commands/ood.ts';
import { reportCommand } from './commands/report.ts';
import { robustnessCommand } from './commands/robustness.ts';
import { trainCommand } from './commands/train.ts';
import { predictCommand } from './commands/predict.ts';
import { exportCommand } from './commands/export.ts';
import { featuresCommand } from './commands/features.ts';
import { compareCommand } from './commands/compare.ts';
import { runsCommand } from './commands/runs.ts';
import { splitCommand } from './commands/split.ts';
import { synthCommand } from './commands/synth.ts';
import { tileCommand } from './commands/tile.ts';

export const EXIT_OK = 0;
export const EXIT_INTERNAL = 1;
export const EXIT_BAD_INPUT = 2;

/**
 * The CLI entry: parses, runs one command, and maps errors to exit codes. A user's mistake prints one
 * line naming the file and the problem (exit 2); anything else is our fault (exit 1), with the stack
 * only under GRADELAB_LOG=debug.
 */
export async function main(args: string[]): Promise<number> {
  let usageError: string | undefined;
  const parser = yargs(args)
    .scriptName('gradelab')
    .usage('$0 <command> [options]\n\nA workbench for AI that grades cancer on histopathology slides.')
    .strict()
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    })
    .demandCommand(1, 'name a command (gradelab --help lists them)')
    .help()
    .alias('help', 'h')
    .version();
  slideCommand(parser);
  tileCommand(parser);
  splitCommand(parser);
  datasetCommand(parser);
  augmentCommand(parser);
  synthCommand(parser);
  runsCommand(parser);
  metricsCommand(parser);
  compareCommand(parser);
  trainCommand(parser);
  predictCommand(parser);
  exportCommand(parser);
  featuresCommand(parser);
  oodCommand(parser);
  milCommand(parser);
  robustnessCommand(parser);
  auditCommand(parser);
  reportCommand(parser);
  demoCommand(parser, main);
  try {
    process.exitCode = undefined;
    await parser.parseAsync();
    if (usageError) {
      process.stderr.write(`gradelab: ${usageError}\n(run with --help for usage)\n`);
      return EXIT_BAD_INPUT;
    }
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (isUserError(err)) {
      process.stderr.write(`gradelab: ${(err as Error).message}\n`);
      return EXIT_BAD_INPUT;
    }
    const e = err as Error;
    process.stderr.write(`gradelab: internal error: ${e?.message ?? String(err)}\n`);
    if (process.env.GRADELAB_LOG === 'debug') process.stderr.write(`${e?.stack ?? ''}\n`);
    else process.stderr.write('(set GRADELAB_LOG=debug for the stack trace, and please report it)\n');
    return EXIT_INTERNAL;
  }
}
