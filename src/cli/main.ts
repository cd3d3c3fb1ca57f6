import yargs, { type Argv } from 'yargs';
import { checkWritable, ConfigError, isUserError, userFacingOsError } from '../core/index.ts';
import { COMMAND_INDEX } from './commandIndex.ts';

import { EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK } from './exitCodes.ts';

/** A number option given something else parses as NaN: that is the user's mistake, said before any work. */
function rejectNaN(argv: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(argv)) {
    if (key === '$0' || key === '_' || /[A-Z]/.test(key)) continue;
    if ((typeof v === 'number' && Number.isNaN(v)) || (Array.isArray(v) && v.some((x) => typeof x === 'number' && Number.isNaN(x))))
      throw new ConfigError(`--${key} must be a number`);
  }
}

/**
 * Folders and files commands write into besides --out and --export: checked as writable before any work
 * (ood fit writes the detectors into the model folder, split writes splits.json into the dataset...).
 */
const WRITES_INTO: Record<string, string[]> = {
  'ood fit': ['model'],
  'mil fit': ['model'],
  export: ['model'],
  split: ['dir'],
  features: ['data'],
};

/** Every output of the command line is writable, checked before the handler runs (one line, exit 2). */
function checkOutputs(argv: Record<string, unknown>): void {
  const command = (argv._ as string[]).slice(0, 2).join(' ');
  const keys = ['out', 'export', ...(WRITES_INTO[command] ?? WRITES_INTO[command.split(' ')[0]] ?? [])];
  for (const key of keys) {
    const v = argv[key];
    if (typeof v === 'string' && v) checkWritable(v, `--${key}`);
  }
}

type Main = (args: string[]) => Promise<number>;

/**
 * The parser with the commands it needs: the command typed, loaded from its module (and so only that
 * command's dependencies); with no known command (help, a typo), every command by name and description
 * only, which loads nothing.
 */
async function buildParser(args: string[], onUsageError: (msg: string) => void, dryRun: boolean, run: Main): Promise<Argv> {
  const parser = yargs(args)
    .scriptName('gradelab')
    .usage('$0 <command> [options]\n\nA workbench for AI that grades cancer on histopathology slides.')
    .strict()
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err) throw err;
      onUsageError(msg);
    })
    .middleware(rejectNaN as never, true)
    .middleware((dryRun ? () => undefined : checkOutputs) as never)
    .demandCommand(1, 'name a command (gradelab --help lists them)')
    .help()
    .alias('help', 'h')
    .version();
  if (dryRun) {
    // The checking pass: every command is registered as usual, but its handler does nothing.
    const command = parser.command.bind(parser) as (...a: unknown[]) => Argv;
    (parser as unknown as { command: (...a: unknown[]) => Argv }).command = (...a: unknown[]) =>
      command(...a.map((x, i) => (i === 3 && typeof x === 'function' ? () => undefined : x)));
  }
  const typed = args.find((a) => !a.startsWith('-'));
  const entry = typed === undefined ? undefined : COMMAND_INDEX[typed];
  if (entry) (await entry.load())(parser, run);
  else
    for (const [name, c] of Object.entries(COMMAND_INDEX))
      parser.command(
        name,
        c.describe,
        () => undefined,
        () => undefined,
      );
  return parser;
}

/** One line: what is wrong, and where the options are listed. */
function usageFailure(message: string, args: string[]): number {
  const line = message.replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
  if (/--help/.test(line)) {
    process.stderr.write(`gradelab: ${line}\n`);
    return EXIT_BAD_INPUT;
  }
  // The command (and subcommand) typed, for the pointer to its options.
  const words = args.slice(0, args.findIndex((a) => a.startsWith('-')) >>> 0);
  const command = words.slice(0, WITH_SUBCOMMANDS.has(words[0]) ? 2 : 1).join(' ');
  process.stderr.write(`gradelab: ${line} (gradelab ${command ? `${command} ` : ''}--help lists the options)\n`);
  return EXIT_BAD_INPUT;
}

const WITH_SUBCOMMANDS = new Set(['slide', 'dataset', 'augment', 'runs', 'models', 'ood', 'mil', 'robustness', 'predict']);

/**
 * The CLI entry: parses, runs one command, and maps errors to exit codes. The whole command line
 * (unknown options, missing required ones, choices, numbers) is checked in a first pass whose handlers
 * do nothing, because yargs validates an async command only after its handler has run: a typo must not
 * cost a full run. A user's mistake prints one line naming the file and the problem (exit 2); anything
 * else is our fault (exit 1), with the stack only under GRADELAB_LOG=debug.
 */
export async function main(args: string[]): Promise<number> {
  let usageError: string | undefined;
  const capture = (msg: string) => {
    usageError ??= msg;
  };
  const helpOrVersion = args.some((a) => a === '--help' || a === '-h' || a === '--version');
  try {
    process.exitCode = undefined;
    if (!helpOrVersion) {
      await (await buildParser(args, capture, true, main)).parseAsync();
      if (usageError) return usageFailure(usageError, args);
    }
    await (await buildParser(args, capture, false, main)).parseAsync();
    if (usageError) return usageFailure(usageError, args);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (isUserError(err)) {
      process.stderr.write(`gradelab: ${(err as Error).message}\n`);
      return EXIT_BAD_INPUT;
    }
    const os = userFacingOsError(err);
    if (os) {
      process.stderr.write(`gradelab: ${os}\n`);
      return EXIT_BAD_INPUT;
    }
    const e = err as Error;
    process.stderr.write(`gradelab: internal error: ${e?.message ?? String(err)}\n`);
    if (process.env.GRADELAB_LOG === 'debug') process.stderr.write(`${e?.stack ?? ''}\n`);
    else process.stderr.write('(set GRADELAB_LOG=debug for the stack trace, and please report it)\n');
    return EXIT_INTERNAL;
  }
}

/** Commands that pick up where they stopped when run again, and how to say so after Ctrl-C. */
const RESUMABLE: Record<string, string> = {
  tile: 'run the same gradelab tile command again: finished slides are kept',
  train: 'continue with gradelab train --resume <model folder> (the last finished epoch is kept)',
  robustness: 'run the same gradelab robustness command again: finished conditions are kept',
  features: 'run the same gradelab features command again: finished slides are kept',
  synth: 'run the same gradelab synth command again',
  demo: 'run the same gradelab demo command again: finished steps are kept',
};

/** What Ctrl-C prints: that nothing half-written was left, and how to continue. */
export function interruptMessage(args: string[]): string {
  const how = RESUMABLE[args.find((a) => !a.startsWith('-')) ?? ''];
  return `gradelab: interrupted; temporary files removed${how ? `; to resume, ${how}` : ''}`;
}
