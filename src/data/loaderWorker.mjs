// Development only: Node starts worker threads on JavaScript, so when gradelab runs from its TypeScript
// source (tests, benchmarks) this registers tsx and loads loaderWorker.ts. The installed package runs the
// compiled loaderWorker.js and never transpiles (see core/modulePath.ts).
import { register } from 'tsx/esm/api';

register();
const worker = await import('./loaderWorker.ts');
export default worker.default;
