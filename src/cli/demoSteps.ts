import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as yamlStringify } from 'yaml';
import { STANDARD_TRAINING_PIPELINE } from '../augment/index.ts';
import { modelFile } from '../core/index.ts';
import { step, type DemoContext } from './demoData.ts';

/** The shipped suites and report text, wherever the demo is run from. */
const EXPERIMENTS = fileURLToPath(new URL('../../experiments/', import.meta.url));

/** Seed 1 of each recipe is the model the rest of the demo uses; further seeds only enter the comparisons. */
const runName = (name: string, seed: number) => (seed === 1 ? name : `${name}-seed${seed}`);

/** The slide-label baseline of a plan whose main recipes learn patterns (demoPlan.ts). */
export const SLIDE_LABELS = 'slide-labels';

/**
 * Trains each recipe (stain augmentation and none, and in a pattern plan the slide-label baseline with
 * stain augmentation) for every seed of the plan; returns the recipes.
 */
export async function trainDemoModels(ctx: DemoContext): Promise<string[]> {
  const { main, plan, out, data, tracking } = ctx;
  const geometric = STANDARD_TRAINING_PIPELINE.filter((s) => ['hflip', 'vflip', 'rot90'].includes(String(s.name)));
  const stain = [
    ...geometric,
    { name: 'hed-jitter', preset: 'strong' },
    { name: 'brightness', delta: 0.1 },
    { name: 'contrast', factor: 0.1 },
  ];
  const mainHead = plan.patterns ? 'patterns' : 'softmax';
  const models: Record<string, { augment: unknown[]; head: string }> = {
    'stain-aug': { augment: stain, head: mainHead },
    'no-aug': { augment: geometric, head: mainHead },
    ...(plan.patterns ? { [SLIDE_LABELS]: { augment: stain, head: 'softmax' } } : {}),
  };
  for (const [name, { augment, head }] of Object.entries(models))
    for (let seed = 1; seed <= plan.seeds; seed++) {
      const run = runName(name, seed);
      const config = {
        name: `demo-${run}`,
        task: 'prostate',
        data: { dataset: data, fold: 0 },
        model: { backbone: 'resnet', width: 0.5, inputSize: 64, head },
        augment,
        train: {
          epochs: plan.epochs,
          batchSize: 32,
          lr: 0.003,
          warmupEpochs: 0.5,
          // Slide labels are noisy per tile; a pattern model's targets are the masks' shares already.
          ...(head === 'softmax' ? { labelSmoothing: 0.05 } : {}),
          gradClip: 5,
          tilesPerEpoch: plan.tilesPerEpoch,
          patience: 4,
        },
        seed,
        backend: 'auto',
        tracking: { experiment: 'gradelab-demo' },
      };
      const cfg = join(out, 'configs', `${run}.yaml`);
      await writeFile(cfg, yamlStringify(config));
      const dir = join(out, 'models', run);
      if (!existsSync(modelFile(dir, 'meta'))) await step(main, `train: ${run}`, ['train', '--config', cfg, '--out', dir, ...tracking]);
      // Every model is calibrated before it is evaluated or compared (ECE is one of the compared metrics).
      if (!existsSync(join(modelFile(dir, 'calibration'), 'calibration.json')))
        await step(main, `temperature scaling: ${run}`, ['calibrate', '--model', dir, '--data', data]);
    }
  return Object.keys(models);
}

/** OOD detectors, evaluation of both models, and their paired comparisons (held-out set, unseen site). */
export async function evaluateDemo(ctx: DemoContext, recipes: string[]): Promise<string[]> {
  const { main, plan, out, data, siteData, heldOut, tracking } = ctx;
  const model = join(out, 'models', 'stain-aug');
  await step(main, 'OOD detectors', ['ood', 'fit', '--model', model, '--data', data]);
  const baseline = join(out, 'models', 'no-aug');
  await step(main, 'OOD evaluation (near and far; tile truth from the masks)', [
    'ood',
    'eval',
    '--model',
    model,
    '--id',
    heldOut,
    '--id-split',
    'all',
    '--ood',
    heldOut,
    '--out',
    join(out, 'ood'),
    '--resamples',
    '300',
    ...tracking,
  ]);
  await step(main, 'evaluation (held-out patients)', [
    'eval',
    '--model',
    model,
    '--data',
    heldOut,
    '--split',
    'all',
    '--out',
    join(out, 'eval'),
    '--resamples',
    '1000',
    ...tracking,
  ]);
  await step(main, 'evaluation of the baseline', [
    'eval',
    '--model',
    baseline,
    '--data',
    heldOut,
    '--split',
    'all',
    '--out',
    join(out, 'eval-no-aug'),
    '--resamples',
    '1000',
    ...tracking,
  ]);
  // Stain augmentation against none (and slide labels against patterns), paired on the same cases:
  // the held-out set and the unseen site.
  const compares: string[] = [];
  const paired = async (where: string, name: string, a: [string, string[]], b: [string, string[]]) => {
    const dir = join(out, 'compare', name);
    await step(main, `${b[0]} vs ${a[0]}, paired (${where})`, [
      'compare',
      '--pred',
      a[1].join(','),
      '--pred',
      b[1].join(','),
      '--name',
      a[0],
      '--name',
      b[0],
      '--model',
      model,
      '--out',
      dir,
      ...tracking,
    ]);
    compares.push(dir);
  };
  // eval wrote seed 1 of the two evaluated recipes; every other run is predicted here.
  const evaluated: Record<string, string> = {
    'stain-aug': join(out, 'eval', 'predictions.csv'),
    'no-aug': join(out, 'eval-no-aug', 'predictions.csv'),
  };
  const heldOutCsv = (name: string, seed: number) =>
    seed === 1 && evaluated[name] ? evaluated[name] : join(out, 'held-out-predictions', `${runName(name, seed)}.csv`);
  const seeds = Array.from({ length: plan.seeds }, (_, i) => i + 1);
  for (const name of recipes)
    for (const seed of seeds)
      if (heldOutCsv(name, seed) !== evaluated[name])
        await step(main, `predict the held-out set: ${runName(name, seed)}`, [
          'predict',
          '--model',
          join(out, 'models', runName(name, seed)),
          '--data',
          heldOut,
          '--split',
          'all',
          '--out',
          heldOutCsv(name, seed),
        ]);
  const heldOutRuns = (name: string): [string, string[]] => [name, seeds.map((seed) => heldOutCsv(name, seed))];
  await paired('held-out set', 'held-out', heldOutRuns('no-aug'), heldOutRuns('stain-aug'));
  for (const name of recipes)
    for (const seed of seeds)
      await step(main, `predict the unseen site: ${runName(name, seed)}`, [
        'predict',
        '--model',
        join(out, 'models', runName(name, seed)),
        '--data',
        siteData,
        '--split',
        'all',
        '--out',
        join(out, 'site-D-predictions', `${runName(name, seed)}.csv`),
      ]);
  const siteRuns = (name: string): [string, string[]] => [
    name,
    seeds.map((seed) => join(out, 'site-D-predictions', `${runName(name, seed)}.csv`)),
  ];
  await paired('unseen site-D', 'site-D', siteRuns('no-aug'), siteRuns('stain-aug'));
  if (recipes.includes(SLIDE_LABELS)) {
    // The same augmentation; only the supervision differs.
    await paired('held-out set', 'supervision-held-out', heldOutRuns(SLIDE_LABELS), ['patterns', heldOutRuns('stain-aug')[1]]);
    await paired('unseen site-D', 'supervision-site-D', siteRuns(SLIDE_LABELS), ['patterns', siteRuns('stain-aug')[1]]);
  }
  return compares;
}

/** Heatmaps, QuPath annotations and viewers; robustness suites; the site audit; the report. Returns the suites' folders. */
export async function mapTestAndReport(ctx: DemoContext, compares: string[], foundation: string): Promise<string[]> {
  const { main, plan, out, data, siteData, heldOut, tracking } = ctx;
  const model = join(out, 'models', 'stain-aug');
  const baseline = join(out, 'models', 'no-aug');
  // Where the model looks: heatmaps of the held-out and unseen-site slides, QuPath annotations, and
  // a static viewer that opens from disk, slides ordered by referral priority.
  // The tiles each slide was evaluated on, so the viewer shows the grade the report states.
  for (const [name, tiles] of [
    ['held-out', heldOut],
    ['site-D', siteData],
  ]) {
    const maps = join(out, 'heatmaps', name);
    await step(main, `heatmaps: ${name}`, ['heatmap', '--model', model, '--data', tiles, '--split', 'all', '--out', maps]);
    await step(main, `QuPath annotations: ${name}`, ['export-annotations', '--pred', maps, '--format', 'qupath']);
    await step(main, `viewer: ${name}`, ['view', '--pred', maps, '--export', join(out, 'viewer', name)]);
  }
  const suites: string[] = [];
  for (const suite of plan.suites) {
    const dir = join(out, 'robustness', suite);
    suites.push(dir);
    await step(
      main,
      `robustness: ${suite}`,
      [
        'robustness',
        '--model',
        model,
        '--data',
        heldOut,
        '--split',
        'all',
        '--suite',
        join(EXPERIMENTS, 'suites', `${suite}.yaml`),
        '--out',
        dir,
        '--baseline',
        baseline,
        '--resamples',
        '300',
        ...tracking,
      ],
      [0, 3],
    );
  }
  // Precision: the held-out slides rescanned three times on one scanner, and once on each of three.
  const precision = [
    ['repeatability', ['--rescans', '3', '--scanner', 'noisy-dim']],
    ['reproducibility', ['--scanners', 'neutral-reference,warm-bright,cool-contrast']],
  ] as const;
  for (const [kind, flags] of precision)
    await step(main, `precision: ${kind}`, [
      'precision',
      '--model',
      model,
      '--data',
      heldOut,
      '--split',
      'all',
      ...flags,
      '--out',
      join(out, 'precision', kind),
      '--resamples',
      '300',
    ]);
  // Does each embedding encode the site beside the grade? The held-out patients of the three training sites.
  const representation = [
    ['stain-aug', model],
    ['no-aug', baseline],
    ['foundation', foundation],
  ] as const;
  for (const [name, dir] of representation)
    await step(main, `representation robustness: ${name}`, [
      'robustness',
      'embeddings',
      ...['--model', dir, '--data', heldOut, '--confounder', 'site', '--out', join(out, 'representation', name), '--resamples', '300'],
    ]);
  await step(main, 'audit of the unseen site', [
    'audit',
    '--model',
    model,
    '--site-data',
    siteData,
    '--train-data',
    data,
    '--out',
    join(out, 'audit'),
    '--resamples',
    '300',
    ...tracking,
  ]);
  await step(main, 'report', [
    'report',
    '--run',
    model,
    '--eval',
    join(out, 'eval'),
    '--ood',
    join(out, 'ood'),
    '--audit',
    join(out, 'audit'),
    ...suites.flatMap((s) => ['--robustness', s]),
    ...precision.flatMap(([kind]) => ['--precision', join(out, 'precision', kind)]),
    ...representation.flatMap(([name]) => ['--representation', join(out, 'representation', name)]),
    ...compares.flatMap((c) => ['--compare', c]),
    ...['held-out', 'site-D'].flatMap((v) => ['--viewer', join(out, 'viewer', v)]),
    '--intended-use',
    join(EXPERIMENTS, 'report', 'intended-use.yaml'),
    '--out',
    join(out, 'report'),
    ...tracking,
  ]);
  return suites;
}
