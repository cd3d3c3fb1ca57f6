/**
 * Progress of long work as the library reports it: the command line draws a bar (cli/progress.ts), a
 * notebook may log, and by default nothing is shown.
 */
export interface Progress {
  start(total: number, label: string): void;
  setTotal(total: number): void;
  increment(n?: number, payload?: Record<string, string | number>): void;
  update(payload: Record<string, string | number>): void;
  stop(): void;
}

/** Makes a progress reporter for one stage of work: its unit ("tiles") and what else its line shows. */
export type ProgressFactory = (unit: string, extraFormat?: string) => Progress;

export const silentProgress: ProgressFactory = () => ({
  start: () => undefined,
  setTotal: () => undefined,
  increment: () => undefined,
  update: () => undefined,
  stop: () => undefined,
});
