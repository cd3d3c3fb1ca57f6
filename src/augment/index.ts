export * from './transform.ts';
export * from './colourSpaces.ts';
export { scaleStains, brightnessLut, contrastLut, gammaLut } from './colour.ts';
export * from './macenko.ts';
export * from './reinhard.ts';
export { flipHorizontal, flipVertical, rotate90, zoom, elastic, crop } from './morphology.ts';
export {
  addGaussianNoise,
  addShotNoise,
  gaussianBlur,
  defocusBlur,
  jpegCorruption,
  jpegRoundTrip,
  motionBlur,
  pixelate,
  poisson,
} from './corruptions.ts';
export { blurRgb, jpegQuantTable, jpegRoundTripSimulated } from './wasmKernels.ts';
export * from './scanner.ts';
export * from './pipeline.ts';
export { contactSheet, previewPipeline, severityGrid, type Cell } from './preview.ts';
export { strokeCoverage } from './artifacts.ts';
export type { FusedOp, GeometricOp, PixelOp } from './fused.ts';
