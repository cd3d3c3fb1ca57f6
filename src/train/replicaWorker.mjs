// Development only: Node starts worker threads on JavaScript, so when gradelab runs from its TypeScript
// source (tests, benchmarks) this registers tsx and loads replicaWorker.ts. The installed package runs the
// compiled replicaWorker.js and never transpiles (see core/modulePath.ts).
import { register } from 'tsx/esm/api';

register();
await import('./replicaWorker.ts');
