/**
 * gradelab's exit statuses, in one place (the README's table says the same): 0 done; 1 an internal
 * failure; 2 bad input, a user error (a file, flag or configuration to fix; a disk full or not writable);
 * 3 an acceptance criterion failed; 130 and 143 interrupted by SIGINT (Ctrl-C) or SIGTERM.
 */
export const EXIT_OK = 0;
export const EXIT_INTERNAL = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_CRITERIA_FAILED = 3;
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;
