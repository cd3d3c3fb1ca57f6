export * from './types.ts';
export * from './validation.ts';
export { FileStore, pyFloat } from './fileStore.ts';
export { RestStore, TrackingServerError, authHeader, splitBatch } from './restStore.ts';
export { JournaledStore, warnPending } from './journal.ts';
export { provenanceTags } from './provenance.ts';
export { startRun, resumeRun, openStore, reapStaleRuns, type TrackingOptions } from './tracker.ts';
