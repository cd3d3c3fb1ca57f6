/**
 * gradelab's public API: everything a command does, as a function a notebook or another program can
 * call. Each workflow is the command of the same purpose without its flags: `tileSlides` is `gradelab
 * tile`, `train` is `gradelab train`, `evaluate` is `gradelab eval`, and so on.
 *
 * ```ts
 * import { openSlide, tileSlides, train, evaluate, fitOod, runSuite, audit, report } from 'gradelab';
 *
 * const ds = await tileSlides('slides/manifest.csv', 'tiles', { tileSize: 128, mpp: 1 });
 * const { out } = await train('experiments/prostate-isup.yaml', { data: 'tiles' });
 * const metrics = await evaluate(out, 'held-out-tiles', 'eval', { split: 'all' });
 * console.log(metrics.metrics.qwk);
 * ```
 *
 * @packageDocumentation
 */

// Slides, tiles and datasets.
export {
  openSlide,
  openTileDataset,
  openDatasetForModel,
  readManifest,
  readDatasetTile,
  TileReader,
  ShardReader,
  openTileIndex,
  summariseDataset,
  patientsOfDataset,
  patientsOf,
  exportIndex,
  importPatches,
  importFeatures,
  importedFeatureSets,
  type ImportedFeatures,
  makeSplit,
  saveSplit,
  loadSplit,
  tilesOfPartition,
  detectTissue,
  planTiles,
  readThumbnail,
  type SlideSource,
  type TileDataset,
  type TileRow,
  type TilePredictions,
  type TileDatasetIndex,
  type TileFilter,
  type TileStore,
  type DatasetSummary,
  type TileCount,
  type PatientInfo,
  type TileStoreInfo,
  type StoredTile,
  type ImportPatchesOptions,
  type PatchSource,
  type Manifest,
  type Partition,
} from './data/index.ts';
export { generateSynthetic } from './synth/index.ts';
export { tileSlides, type TileSlidesOptions } from './workflows/tile.ts';
export { planClusterJob, CLUSTER_COMMANDS, type ClusterJobPlan, type ClusterCommand } from './workflows/clusterJobs.ts';
export { submitSlurm, slurmScripts, type SlurmResources, type SlurmSubmission } from './workflows/slurm.ts';
export { clusterStatus, formatClusterStatus, type ClusterCommandStatus } from './workflows/clusterStatus.ts';
export { kubernetesJobs, kubernetesYaml, type KubernetesOptions } from './workflows/kubernetesJobs.ts';

// Augmentation and stain.
export {
  buildPipeline,
  loadPipeline,
  transformFromSpec,
  describeTransforms,
  STANDARD_TRAINING_PIPELINE,
  MacenkoNormalizer,
  rgbToHed,
  tissueWeight,
  contactSheet,
  loadScannerProfile,
} from './augment/index.ts';

// Training and inference.
export { trainExperiment as train, type TrainOptions } from './workflows/train.ts';
export { openModel } from './workflows/openModel.ts';
export type { ModelOpenOptions } from './engine/index.ts';
export { predictDataset as predict, evaluateModel as evaluate, type PredictOptions, type EvaluateOptions } from './workflows/predict.ts';
export { extractEmbeddings } from './workflows/embeddings.ts';

// Out-of-distribution detection, robustness, audits.
export { fitOod, evaluateOod, type FitOodOptions, type EvaluateOodOptions } from './workflows/ood.ts';
export { runRobustnessSuite as runSuite, mergeRobustnessShards, type RobustnessOptions } from './workflows/robustness.ts';
export { auditModel as audit, type AuditOptions } from './workflows/audit.ts';
export { calibrateModel as calibrate, type CalibrateOptions, type CalibrationResult, type GroupFigures } from './workflows/calibrate.ts';
export { precisionStudy, type PrecisionOptions } from './workflows/precision.ts';
export { representationStudy, type RepresentationOptions, type EmbeddingSource } from './workflows/representation.ts';

// Metrics and statistics.
export {
  evaluatePredictions,
  readPredictions,
  writePredictions,
  comparePredictions,
  analyseMrmc,
  readReaderStudy,
  type ReaderStudy,
  type MrmcAnalysis,
  type MrmcFom,
  type MrmcInterval,
  type MrmcDifference,
  type SelectiveReport,
  type PrecisionReport,
  type RescannedSlide,
  type CalibrationFigures,
  type SelectiveScore,
  bootstrapByPatient,
  pairedBootstrap,
  wilsonInterval,
  newcombeAucInterval,
  quadraticWeightedKappa,
  cohenKappa,
  auroc,
  calibration,
  renderChart,
  writeChart,
  type MetricsReport,
  type Predictions,
  type PredictionRow,
  type Estimate,
} from './eval/index.ts';

// Where the model looks, and the report.
export { slidesToMap, writeHeatmaps, checkHeatmapRun, loadHeatmap, exportViewer, startViewer, toGeoJson, toAsapXml } from './view/index.ts';
export { writeReport as report, type ReportArgs } from './report/index.ts';

// Tracking, model folders and errors.
export { startRun, openStore, FileStore, type Tracker } from './track/index.ts';
export {
  readModelMeta,
  GradelabError,
  InputError,
  ConfigError,
  isupFromGleason,
  gleasonFromAreas,
  DEFAULT_PATTERN_RULE,
  type PatternAreas,
  type PatternRule,
  type GleasonFromAreas,
  patternGradeProbabilities,
  PATTERN_CLASSES,
  PATTERN_ISUP,
  type PatternGrading,
  type HeadKind,
  nottinghamGrade,
  createRng,
  type ModelMeta,
  encoderSpecSchema,
  type EncoderSpec,
  type RgbImage,
  type Rng,
} from './core/index.ts';

// Types the functions above take and return.
export type {
  SlideLevel,
  SlideVendor,
  OpenSlideOptions,
  SlideRecord,
  ReadManifestOptions,
  TileDatasetMeta,
  TileEncoding,
  TileGrid,
  TilingOptions,
  TissueMask,
  TissueMethod,
  TissueOptions,
  SlideResult,
  MakeSplitOptions,
  SplitFile,
  Shard,
  EmbeddingCache,
  EmbeddingDtype,
  TilePlan,
  SlideTiling,
} from './data/index.ts';
export type { SynthOptions, SynthSlide, AnomalyKind, LookAlikeStains } from './synth/index.ts';
export type {
  Pipeline,
  PipelineSpec,
  Step,
  FusedOp,
  GeometricOp,
  PixelOp,
  Transform,
  TransformKind,
  Cell,
  MacenkoState,
} from './augment/index.ts';
export type { Device, EngineOptions } from './engine/index.ts';
export type { ExtractOptions } from './workflows/embeddings.ts';
export type { SlidePooling } from './workflows/predict.ts';
export type { OodEvaluation } from './workflows/ood.ts';
export type {
  AgreementReport,
  ColourStats,
  ComparedMetric,
  Comparison,
  CriterionResult,
  ExcludedSlide,
  OodStudy,
  DetectorStudy,
  LevelMetrics,
  OodMetrics,
  UnitResult,
  CoveragePoint,
  CutoffResult,
  EvaluateOptions as MetricsOptions,
  EvaluationSet,
  IntervalMethod,
  KappaWeights,
  PairedEstimate,
  ReliabilityBin,
  SiteAudit,
  SiteSeparability,
  SubgroupResult,
  SuiteSummary,
  VegaLiteSpec,
} from './eval/index.ts';
export type {
  HeatmapIndexEntry,
  HeatmapRunIdentity,
  WriteHeatmapsOptions,
  HeatmapMil,
  HeatmapPooling,
  HeatmapScorer,
  HeatmapTile,
  HeatmapTiles,
  HeatmapModel,
  HeatmapSlide,
  HeatmapSource,
  HeatmapTilingOptions,
  SlideHeatmap,
  TileFormat,
  ViewerSlide,
} from './view/index.ts';
export type { ReportSection, ReportChart } from './report/index.ts';
export type { Metric, RunStatus, RunSummary, TrackingOptions, TrackingStore } from './track/index.ts';
export type { ModelPredictor, PredictorMeta, Progress, ProgressFactory, Task, TileBatch, TileOutputs } from './core/index.ts';
// The schemas of the files gradelab writes, for tools that read them without gradelab's readers.
export { modelMetaSchema } from './core/index.ts';
export { datasetMetaSchema } from './data/index.ts';
export { metricsFileSchema, oodFileSchema, suiteResultsSchema, auditFileSchema, compareFileSchema } from './eval/index.ts';
