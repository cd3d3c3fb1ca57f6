export * from './detectors.ts';
export * from './aggregate.ts';
export { cholesky } from './linalg.ts';
export * from './store.ts';
