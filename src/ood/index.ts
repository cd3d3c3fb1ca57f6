export * from './detectors.ts';
import './vim.ts';
export { QUALITY_DETECTORS } from './quality.ts';
export { QUALITY_FEATURES, QUALITY_DIM, qualityFeatures, imagesQuality, needsQuality } from './qualityFeatures.ts';
export { recoverLinearHead, vimOrigin, pinvSymmetric } from './linearHead.ts';
export * from './aggregate.ts';
export { cholesky } from './linalg.ts';
export * from './store.ts';
