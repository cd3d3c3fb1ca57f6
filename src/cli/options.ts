import { DEFAULT_EXCLUSIONS, EXCLUSIONS } from '../eval/index.ts';

/** --exclude on the commands that compute grading metrics (eval, metrics). */
export const EXCLUDE_OPTION = {
  type: 'string',
  default: DEFAULT_EXCLUSIONS.join(','),
  describe: `slides left out of the headline metrics and reported apart: ${EXCLUSIONS.join(', ')} (comma-separated), or none`,
} as const;
