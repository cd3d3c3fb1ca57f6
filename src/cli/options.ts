import type { Argv } from 'yargs';
import { ConfigError } from '../core/index.ts';
import { DEFAULT_EXCLUSIONS, EXCLUSIONS } from '../eval/index.ts';

/** --exclude on the commands that compute grading metrics (eval, metrics). */
export const EXCLUDE_OPTION = {
  type: 'string',
  default: DEFAULT_EXCLUSIONS.join(','),
  describe: `slides left out of the headline metrics and reported apart: ${EXCLUSIONS.join(', ')} (comma-separated), or none`,
} as const;

/**
 * The flags of the commands many processes share one folder with (tile, features): when another host's
 * silent claim is taken over, and the two roles of an array (workers that stop when nothing is free to
 * claim, and the finish). `work` says what a worker does to a slide ("tile", "embed").
 */
export function claimFlags<T>(y: Argv<T>, work: string, finish: string) {
  return y
    .option('stale-after', {
      type: 'number',
      default: 300,
      describe: "seconds after which another host's claim on a slide, its heartbeat silent, is taken over",
    })
    .option('claim-only', {
      type: 'boolean',
      describe: `a worker of many: ${work} the slides free to claim, then stop (SLURM array tasks)`,
    })
    .option('finish', { type: 'boolean', describe: finish })
    .conflicts('claim-only', 'finish');
}

/** --stale-after in milliseconds, refused in one line unless a positive number of seconds. */
export function staleAfterMs(seconds: number): number {
  if (!(seconds > 0)) throw new ConfigError(`--stale-after must be a positive number of seconds, got ${seconds}`);
  return seconds * 1000;
}
