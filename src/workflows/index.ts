export { predictDataset, evaluateModel, type PredictOptions, type EvaluateOptions, type SlidePooling } from './predict.ts';
export { modelOutputs } from './modelOutputs.ts';
export { fitOod, evaluateOod, oodGroup, type FitOodOptions, type EvaluateOodOptions, type OodEvaluation } from './ood.ts';
export { runRobustnessSuite, mergeRobustnessShards, type RobustnessOptions } from './robustness.ts';
export { modelScorer, type ModelScorer } from './modelScorer.ts';
export { extractEmbeddings, type ExtractOptions } from './embeddings.ts';
export { trainExperiment, ensureDataset, selectedMetrics, type TrainOptions } from './train.ts';
export { auditModel, type AuditOptions } from './audit.ts';
export { tileSlides, type TileSlidesOptions } from './tile.ts';
