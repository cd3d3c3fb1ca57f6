import { installInterruptHandlers } from '../core/interrupt.ts';
import { interruptMessage, main } from './main.ts';

/** The process entry (bin/gradelab.mjs): owns Ctrl-C and SIGTERM, then runs one command line. */
export async function run(args: string[]): Promise<number> {
  installInterruptHandlers(() => interruptMessage(args));
  // `gradelab ... | head`: the reader has what it wanted; stop quietly instead of a stack trace.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  return main(args);
}
