/**
 * Logging to stderr so stdout stays clean for --json output and piping. GRADELAB_LOG=quiet|info|debug.
 */
type Level = 'quiet' | 'info' | 'debug';

function level(): Level {
  const v = process.env.GRADELAB_LOG;
  return v === 'quiet' || v === 'debug' ? v : 'info';
}

export const log = {
  info(message: string): void {
    if (level() !== 'quiet') process.stderr.write(`${message}\n`);
  },
  warn(message: string): void {
    process.stderr.write(`warning: ${message}\n`);
  },
  debug(message: string): void {
    if (level() === 'debug') process.stderr.write(`debug: ${message}\n`);
  },
};
