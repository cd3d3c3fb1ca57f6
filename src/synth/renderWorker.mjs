// Development only: Node starts worker threads on JavaScript, so when gradelab runs from its TypeScript
// source (tests, benchmarks) this registers tsx and loads renderWorker.ts. The installed package runs the
// compiled renderWorker.js and never transpiles (see core/modulePath.ts).
import { register } from 'tsx/esm/api';

register();
const worker = await import('./renderWorker.ts');
export default worker.default;
