export * from './errors.ts';
export * from './image.ts';
export * from './rng.ts';
export * from './registry.ts';
export * from './log.ts';
export * from './atomic.ts';
export * from './grading.ts';
export * from './group.ts';
export type { Predictor, TileBatch } from './predictor.ts';
