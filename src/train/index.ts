export { selectBackend, type BackendName, type BackendChoice } from './backend.ts';
export { registerWasmTrainingKernels, conv2dFilterGrad, conv2dInputGrad } from './kernels.ts';
export { depthwiseFilterGrad, depthwiseInputGrad } from './depthwiseGrads.ts';
export { registerBatchNormGradient } from './gradients.ts';
export { modelRegistry, backbone, type BackboneDef } from './models.ts';
export { buildHead, headLoss, headProbabilities, CoralBias, type HeadName } from './heads.ts';
export {
  trainConfigSchema,
  parseTrainConfig,
  loadTrainConfig,
  applyOverrides,
  checkExperiment,
  type TrainConfig,
  type ConfigOverrides,
} from './config.ts';
export { saveLayersModel, loadLayersModel } from './modelDir.ts';
export { TfjsPredictor, batchTensor } from './predictor.ts';
export { exportOnnx, ONNX_OPSETS } from './onnxExport.ts';
export { foldBatchNorm } from './fold.ts';
export { scheduledLr } from './schedule.ts';
export {
  choosePatternGrading,
  gradingFromValidation,
  validationSlides,
  DEFAULT_PATTERN_GRADING,
  RULE_GRID,
  type ValidationSlide,
} from './patternRule.ts';
export { patternTargets, allowedPatterns, supervisionOf, type PatternTargets } from './patternTargets.ts';
export { fitHeadOnEmbeddings, type EmbeddingSet, type HeadEpoch, type HeadFitResult } from './embeddingHead.ts';
export { fit, flattenParams, prepareData, type FitResult, type EpochResult, type FitCallbacks } from './fit.ts';
export { readCheckpointState, trainingScope, type LoopState } from './fitStages.ts';
export { AttentionMil, saveMil, loadMil, bagsOf, type Bag, type MilWeights } from './mil.ts';
export { LocalTrainer, replicaCount, type Trainer } from './trainer.ts';
export { ReplicaTrainer, ReplicaError, shardSizes } from './replicas.ts';
export type { StepReport } from './replicaTask.ts';
export { lossAndGradients, applyGradients, makeOptimizer, trainableVariables, type StepBatch } from './step.ts';
