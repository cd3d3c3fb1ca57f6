import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { stringify as yamlStringify } from 'yaml';
import { GradelabError, log } from '../../core/index.ts';
import { STANDARD_TRAINING_PIPELINE } from '../../augment/index.ts';
import { DEMO_PLAN, PLANS } from '../demoPlan.ts';

type Main = (args: string[]) => Promise<number>;

/** The shipped suites and report text, wherever the demo is run from. */
const EXPERIMENTS = fileURLToPath(new URL('../../../experiments/', import.meta.url));

/** Runs one CLI step in-process; exit code 3 (a failed acceptance criterion) is a result, not an error. */
async function step(main: Main, title: string, args: string[], allow: number[] = [0]): Promise<number> {
  log.info(`\n== ${title}`);
  const t0 = performance.now();
  const code = await main(args);
  log.info(`(${title}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  if (!allow.includes(code)) throw new GradelabError(`demo step "${title}" failed (exit ${code})`);
  return code;
}

export function demoCommand(y: Argv, main: Main): Argv {
  return y.command(
    'demo',
    'Run the end-to-end workflow on synthetic slides: data, training with and without stain augmentation, OOD, evaluation, robustness, site audit, report',
    (c) =>
      c
        .option('quick', {
          type: 'boolean',
          default: false,
          describe: 'a smaller run (about 2 minutes on 2 cores, against 13 for the full one)',
        })
        .option('out', { type: 'string', default: 'gradelab-demo', describe: 'output folder' }),
    async (argv) => {
      const plan = PLANS[argv.quick ? 'quick' : 'full'];
      const out = resolve(argv.out);
      const t0 = Date.now();
      process.stdout.write(`${DEMO_PLAN}\n\n${argv.quick ? 'quick' : 'full'} run into ${out}\n`);
      await mkdir(join(out, 'configs'), { recursive: true });
      const tracking = ['--tracking-dir', join(out, 'mlruns')];
      const data = join(out, 'tiles');
      const siteData = join(out, 'site-D-tiles');
      const heldOut = join(out, 'held-out-tiles');
      const tiling = ['--tile-size', '128', '--mpp', '1.0', '--stride', '64', '--min-tissue', '0.5'];
      // Slides and tiles: three training sites, then an unseen site with another stain protocol and scanner.
      if (!existsSync(join(data, 'tiles.csv'))) {
        await step(main, 'synthetic slides (sites A-C)', [
          'synth',
          '--task',
          'prostate',
          '--slides',
          String(plan.slides),
          '--size',
          String(plan.size),
          '--sites',
          '3',
          '--anomalies',
          '0.15',
          '--seed',
          '5',
          '--out',
          join(out, 'slides'),
        ]);
        await step(main, 'tiles', ['tile', '--manifest', join(out, 'slides', 'manifest.csv'), '--out', data, ...tiling]);
      }
      // The held-out set and the unseen site are only ever predicted, so they can be large enough for
      // narrow intervals; 1024 px slides (smaller biopsies) keep their making quick.
      if (!existsSync(join(heldOut, 'tiles.csv'))) {
        await step(main, 'a held-out test set (sites A-C, new patients)', [
          'synth',
          '--task',
          'prostate',
          '--slides',
          String(plan.testSlides),
          '--size',
          '1024',
          '--sites',
          '3',
          '--anomalies',
          '0.2',
          '--seed',
          '23',
          '--out',
          join(out, 'held-out-slides'),
        ]);
        await step(main, 'tiles of the held-out set', [
          'tile',
          '--manifest',
          join(out, 'held-out-slides', 'manifest.csv'),
          '--out',
          heldOut,
          ...tiling,
        ]);
      }
      if (!existsSync(join(siteData, 'tiles.csv'))) {
        await step(main, 'an unseen site (site-D)', [
          'synth',
          '--task',
          'prostate',
          '--slides',
          String(plan.siteSlides),
          '--size',
          '1024',
          '--site',
          'site-D',
          '--anomalies',
          '0',
          '--seed',
          '11',
          '--out',
          join(out, 'site-D-slides'),
        ]);
        await step(main, 'tiles of the unseen site', [
          'tile',
          '--manifest',
          join(out, 'site-D-slides', 'manifest.csv'),
          '--out',
          siteData,
          ...tiling,
        ]);
      }
      if (!existsSync(join(data, 'splits.json'))) await step(main, 'patient split', ['split', data, '--folds', '5', '--seed', '1']);

      const geometric = STANDARD_TRAINING_PIPELINE.filter((s) => ['hflip', 'vflip', 'rot90'].includes(String(s.name)));
      const models: Record<string, unknown[]> = {
        'stain-aug': [
          ...geometric,
          { name: 'hed-jitter', preset: 'strong' },
          { name: 'brightness', delta: 0.1 },
          { name: 'contrast', factor: 0.1 },
        ],
        'no-aug': geometric,
      };
      // Seed 1 of each recipe is the model the rest of the demo uses; further seeds only enter the comparisons.
      const runName = (name: string, seed: number) => (seed === 1 ? name : `${name}-seed${seed}`);
      for (const [name, augment] of Object.entries(models))
        for (let seed = 1; seed <= plan.seeds; seed++) {
          const run = runName(name, seed);
          const config = {
            name: `demo-${run}`,
            task: 'prostate',
            data: { dataset: data, fold: 0 },
            model: { backbone: 'resnet', width: 0.5, inputSize: 64, head: 'softmax' },
            augment,
            train: {
              epochs: plan.epochs,
              batchSize: 32,
              lr: 0.003,
              warmupEpochs: 0.5,
              labelSmoothing: 0.05,
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
          if (!existsSync(join(out, 'models', run, 'gradelab.json')))
            await step(main, `train: ${run}`, ['train', '--config', cfg, '--out', join(out, 'models', run), ...tracking]);
        }
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
      // Stain augmentation against none, paired on the same cases: the held-out set and the unseen site.
      const compares: string[] = [];
      const paired = async (where: string, name: string, noAug: string[], stainAug: string[]) => {
        const dir = join(out, 'compare', name);
        await step(main, `stain-aug vs no-aug, paired (${where})`, [
          'compare',
          '--pred',
          noAug.join(','),
          '--pred',
          stainAug.join(','),
          '--name',
          'no-aug',
          '--name',
          'stain-aug',
          '--model',
          model,
          '--out',
          dir,
          ...tracking,
        ]);
        compares.push(dir);
      };
      const extraSeeds = Array.from({ length: plan.seeds - 1 }, (_, i) => i + 2);
      for (const name of Object.keys(models))
        for (const seed of extraSeeds)
          await step(main, `predict the held-out set: ${runName(name, seed)}`, [
            'predict',
            '--model',
            join(out, 'models', runName(name, seed)),
            '--data',
            heldOut,
            '--split',
            'all',
            '--out',
            join(out, 'held-out-predictions', `${runName(name, seed)}.csv`),
          ]);
      const heldOutRuns = (name: string, first: string) => [
        first,
        ...extraSeeds.map((seed) => join(out, 'held-out-predictions', `${runName(name, seed)}.csv`)),
      ];
      await paired(
        'held-out set',
        'held-out',
        heldOutRuns('no-aug', join(out, 'eval-no-aug', 'predictions.csv')),
        heldOutRuns('stain-aug', join(out, 'eval', 'predictions.csv')),
      );
      for (const name of Object.keys(models))
        for (let seed = 1; seed <= plan.seeds; seed++)
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
      const siteRuns = (name: string) =>
        Array.from({ length: plan.seeds }, (_, i) => join(out, 'site-D-predictions', `${runName(name, i + 1)}.csv`));
      await paired('unseen site-D', 'site-D', siteRuns('no-aug'), siteRuns('stain-aug'));
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
        ...compares.flatMap((c) => ['--compare', c]),
        ...['held-out', 'site-D'].flatMap((v) => ['--viewer', join(out, 'viewer', v)]),
        '--intended-use',
        join(EXPERIMENTS, 'report', 'intended-use.yaml'),
        '--out',
        join(out, 'report'),
        ...tracking,
      ]);
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      process.stdout.write(
        `\ndemo finished in ${secs} s. Outputs:\n` +
          [
            ['report', join(out, 'report', 'report.html'), 'and report.pdf, report.json'],
            ['models', join(out, 'models'), 'stain-aug (HED-strong augmentation) and no-aug (baseline)'],
            ['evaluation', join(out, 'eval', 'metrics.md'), 'held-out patients, with charts'],
            ['comparisons', join(out, 'compare'), 'stain-aug vs no-aug, paired: held-out and site-D'],
            [
              'viewer',
              join(out, 'viewer', 'held-out', 'index.html'),
              `and viewer/site-D; heatmaps and QuPath GeoJSON in ${join(out, 'heatmaps')}`,
            ],
            ['OOD', join(out, 'ood', 'ood.md'), ''],
            ['robustness', join(out, 'robustness'), suites.map((s) => s.split('/').pop()).join(', ')],
            ['site audit', join(out, 'audit', 'summary.md'), ''],
            ['tracked runs', join(out, 'mlruns'), `npx gradelab runs list --tracking-dir ${join(out, 'mlruns')}`],
          ]
            .map(([a, b, c]) => `  ${a.padEnd(13)} ${b}${c ? `  (${c})` : ''}`)
            .join('\n') +
          '\n',
      );
    },
  );
}
