export * from './detectors.ts';
export * from './aggregate.ts';
export { symmetricEigen, cholesky } from './linalg.ts';
export * from './store.ts';
