export * from './types.ts';
export * from './validation.ts';
export { FileStore } from './fileStore.ts';
export { pyFloat, parsePyFloat, osUser } from './metaYaml.ts';
export { RestStore, TrackingServerError, authHeader, splitBatch } from './restStore.ts';
export { JournaledStore, warnPending } from './journal.ts';
export { provenanceTags } from './provenance.ts';
export { startRun, resumeRun, openStore, reapStaleRuns, pidAlive, type TrackingOptions } from './tracker.ts';
