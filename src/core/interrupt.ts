import { rmSync } from 'node:fs';

/**
 * What must happen if the process is interrupted or exits before its work ends: temp files removed,
 * tracked runs ended. Library code registers synchronous cleanups here; only the command-line entry
 * installs the signal handlers that run them (a library must not take over a host's Ctrl-C), while
 * process exit runs them everywhere.
 */
/** Why cleanups run: a signal (Ctrl-C, a scheduler's TERM) or the process exiting before the work ended. */
export type StopReason = 'signal' | 'exit';

const cleanups = new Set<(reason: StopReason) => void>();
let exitHooked = false;

/** Registers a cleanup; the returned function unregisters it once the work it guards is done. */
export function onInterrupt(cleanup: (reason: StopReason) => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => runCleanups('exit'));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Removes `path` if the process stops before `done()` is called: a temp file that must not outlive its writer. */
export function tempFileGuard(path: string): () => void {
  return onInterrupt(() => rmSync(path, { force: true }));
}

/** Runs every registered cleanup once (each is removed first, so a throwing one cannot run twice). */
export function runCleanups(reason: StopReason): void {
  for (const c of [...cleanups]) {
    cleanups.delete(c);
    try {
      c(reason);
    } catch {
      // The process is going down: the other cleanups still run.
    }
  }
}

/**
 * SIGINT (Ctrl-C) and SIGTERM: run the cleanups, say what happened and how to continue, and exit with
 * 130 or 143. For the command-line entry only.
 */
export function installInterruptHandlers(message: () => string): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      runCleanups('signal');
      process.stderr.write(`\n${message()}\n`);
      process.exit(code);
    });
  }
}
