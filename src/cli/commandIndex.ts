import type { Argv } from 'yargs';

/** Registers a command (and its subcommands) on the parser; the demo also gets the CLI entry to call. */
export type RegisterCommand = (y: Argv, main: (args: string[]) => Promise<number>) => Argv;

/**
 * Every command: its one-line description (the only copy; the command modules take theirs from here) and
 * how to load its module. The CLI loads only the module of the command typed, so `gradelab slide info`
 * never loads TensorFlow.js or ONNX Runtime, and `gradelab --help` loads no command at all.
 */
export const COMMAND_INDEX: Record<string, { describe: string; load: () => Promise<RegisterCommand> }> = {
  slide: {
    describe: 'Inspect whole-slide images and read regions',
    load: () => import('./commands/slide.ts').then((m) => m.slideCommand),
  },
  tile: {
    describe: 'Tile the slides of a manifest at a target resolution into a tile dataset folder (resumable)',
    load: () => import('./commands/tile.ts').then((m) => m.tileCommand),
  },
  slurm: {
    describe: 'Run tile, features, predict or robustness as a SLURM array with a finishing job, and follow it',
    load: () => import('./commands/slurm.ts').then((m) => m.slurmCommand),
  },
  kubernetes: {
    describe: 'Write tile, features, predict or robustness as a Kubernetes Indexed Job and its finishing Job (the plan a SLURM array runs)',
    load: () => import('./commands/kubernetes.ts').then((m) => m.kubernetesCommand),
  },
  split: {
    describe: 'Make patient-grouped, label-stratified folds (or leave-one-site-out) and save them with the dataset',
    load: () => import('./commands/split.ts').then((m) => m.splitCommand),
  },
  dataset: {
    describe: 'Inspect tile datasets',
    load: () => import('./commands/dataset.ts').then((m) => m.datasetCommand),
  },
  augment: {
    describe: 'List transforms and preview augmentation pipelines',
    load: () => import('./commands/augment.ts').then((m) => m.augmentCommand),
  },
  synth: {
    describe: 'Generate synthetic prostate or breast slides from several sites, with label masks, a manifest and rare anomalies',
    load: () => import('./commands/synth.ts').then((m) => m.synthCommand),
  },
  calibrate: {
    describe:
      'Fit temperature scaling on validation slides; every command then reports calibrated probabilities (ECE before/after, per site and scanner)',
    load: () => import('./commands/calibrate.ts').then((m) => m.calibrateCommand),
  },
  precision: {
    describe:
      'Repeatability (rescans through one scanner profile) or reproducibility (across profiles) of slide grades, with patient-bootstrap CIs',
    load: () => import('./commands/precision.ts').then((m) => m.precisionCommand),
  },
  mrmc: {
    describe:
      'Multi-reader multi-case study: Obuchowski-Rockette analysis of readers with and without the AI (Hillis df), or a blank ratings template',
    load: () => import('./commands/mrmc.ts').then((m) => m.mrmcCommand),
  },
  runs: {
    describe: 'List, show, compare and sync tracked runs (MLflow layout)',
    load: () => import('./commands/runs.ts').then((m) => m.runsCommand),
  },
  metrics: {
    describe: 'Grading metrics with patient-bootstrap 95% CIs, agreement, referral analysis and charts from a predictions CSV',
    load: () => import('./commands/metrics.ts').then((m) => m.metricsCommand),
  },
  compare: {
    describe:
      'Paired comparison of two predictions files on the same cases: the difference in QWK, accuracy, ECE and AUROC at the cut-offs, with a paired patient-bootstrap CI',
    load: () => import('./commands/compare.ts').then((m) => m.compareCommand),
  },
  train: {
    describe: 'Train a grading model from an experiment file (resumable, tracked)',
    load: () => import('./commands/train.ts').then((m) => m.trainCommand),
  },
  models: {
    describe: 'List the model registry',
    load: () => import('./commands/models.ts').then((m) => m.modelsCommand),
  },
  predict: {
    describe: 'Predict grades for a dataset partition and write the predictions CSV (slide or tile level)',
    load: () => import('./commands/predict.ts').then((m) => m.predictCommand),
  },
  eval: {
    describe: 'Predict a partition, then compute the full metrics with patient-bootstrap CIs and charts',
    load: () => import('./commands/eval.ts').then((m) => m.evalCommand),
  },
  export: {
    describe:
      'Write a trained model as ONNX (features and logits outputs, batch norms folded) for ONNX Runtime, C++, C#, Java, Python, CUDA or TensorRT',
    load: () => import('./commands/export.ts').then((m) => m.exportCommand),
  },
  encoders: {
    describe: 'The known pathology foundation models (UNI, Virchow, H-optimus, ...): what gradelab needs to use their ONNX exports',
    load: () => import('./commands/encoders.ts').then((m) => m.encodersCommand),
  },
  features: {
    describe:
      "Embed a dataset's tiles once with a frozen ONNX encoder (a pathology foundation model) and cache them beside the dataset; resumable, shardable",
    load: () => import('./commands/features.ts').then((m) => m.featuresCommand),
  },
  ood: {
    describe: "Out-of-distribution detectors: fit on a model's features (and tiles' quality), evaluate near and far",
    load: () => import('./commands/ood.ts').then((m) => m.oodCommand),
  },
  mil: {
    describe: 'Attention-based multiple-instance pooling (Ilse et al. 2018) of tile embeddings, trained from slide labels',
    load: () => import('./commands/mil.ts').then((m) => m.milCommand),
  },
  robustness: {
    describe: 'Run a robustness suite (perturbations at severities, against acceptance criteria); exit 3 when a criterion fails',
    load: () => import('./commands/robustness.ts').then((m) => m.robustnessCommand),
  },
  audit: {
    describe:
      "Audit a model on a new hospital's slides: representation shift, OOD rate, stain statistics, grade distribution, performance if labelled, and what stain normalisation would change; every claim with a 95% CI",
    load: () => import('./commands/audit.ts').then((m) => m.auditCommand),
  },
  report: {
    describe:
      'Write the submission report (HTML, PDF, JSON) of a model: intended use, data, reference standard, model, performance with CIs, referral, robustness, OOD, limitations, traceability',
    load: () => import('./commands/report.ts').then((m) => m.reportCommand),
  },
  heatmap: {
    describe: "Map a model's opinion over slides: per-tile grade probabilities, OOD scores and flags, MIL attention; JSON and PNG overlays",
    load: () => import('./commands/heatmap.ts').then((m) => m.heatmapCommand),
  },
  view: {
    describe: 'Look at slides with the model on them: a local deep-zoom viewer (or --export static files) with overlays',
    load: () => import('./commands/view.ts').then((m) => m.viewCommand),
  },
  'export-annotations': {
    describe: 'Heatmaps as annotations for QuPath (GeoJSON), any GeoJSON reader, or ASAP (XML)',
    load: () => import('./commands/annotations.ts').then((m) => m.annotationsCommand),
  },
  demo: {
    describe:
      'Run the end-to-end workflow on synthetic slides: data, training with and without stain augmentation, OOD, evaluation, robustness, site audit, report',
    load: () => import('./commands/demo.ts').then((m) => m.demoCommand),
  },
};

export function describeCommand(name: string): string {
  const c = COMMAND_INDEX[name];
  if (!c) throw new Error(`no command "${name}" in the command index`);
  return c.describe;
}
