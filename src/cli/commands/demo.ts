import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { makeDemoData, type DemoContext } from '../demoData.ts';
import { DEMO_PLAN, PLANS } from '../demoPlan.ts';
import { evaluateDemo, mapTestAndReport, trainDemoModels } from '../demoSteps.ts';
import { foundationReport, foundationTrack } from '../demoFoundation.ts';

type Main = (args: string[]) => Promise<number>;

export function demoCommand(y: Argv, main: Main): Argv {
  return y.command(
    'demo',
    describeCommand('demo'),
    (c) =>
      c
        .option('quick', {
          type: 'boolean',
          default: false,
          describe: 'a smaller run (about 2 minutes on 2 cores, against 18 for the full one)',
        })
        .option('out', { type: 'string', default: 'gradelab-demo', describe: 'output folder' }),
    async (argv) => {
      const plan = PLANS[argv.quick ? 'quick' : 'full'];
      const out = resolve(argv.out);
      const t0 = Date.now();
      process.stdout.write(`${DEMO_PLAN}\n\n${argv.quick ? 'quick' : 'full'} run into ${out}\n`);
      await mkdir(join(out, 'configs'), { recursive: true });
      const ctx: DemoContext = {
        main,
        plan,
        out,
        tracking: ['--tracking-dir', join(out, 'mlruns')],
        data: join(out, 'tiles'),
        siteData: join(out, 'site-D-tiles'),
        heldOut: join(out, 'held-out-tiles'),
      };
      await makeDemoData(ctx);
      const recipes = await trainDemoModels(ctx);
      const foundation = await foundationTrack(ctx);
      const compares = await evaluateDemo(ctx, recipes);
      const suites = await mapTestAndReport(ctx, compares, foundation);
      const foundationReportDir = await foundationReport(ctx, foundation);
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      process.stdout.write(
        `\ndemo finished in ${secs} s. Outputs:\n` +
          [
            ['report', join(out, 'report', 'report.html'), 'and report.pdf, report.json'],
            ['foundation', join(foundationReportDir, 'report.html'), 'the heads on a frozen encoder: evaluation, OOD, report'],
            [
              'models',
              join(out, 'models'),
              plan.patterns
                ? 'stain-aug (Gleason patterns, HED-strong augmentation), no-aug (patterns, no stain augmentation), slide-labels (the supervision baseline), foundation (heads on a frozen encoder)'
                : 'stain-aug (HED-strong augmentation), no-aug (baseline), foundation (heads on a frozen encoder)',
            ],
            ['representation', join(out, 'representation'), 'how much each embedding encodes the site'],
            ['evaluation', join(out, 'eval', 'metrics.md'), 'held-out patients, with charts'],
            [
              'comparisons',
              join(out, 'compare'),
              `stain-aug vs no-aug${plan.patterns ? ', patterns vs slide labels (supervision-*)' : ''}, paired: held-out and site-D`,
            ],
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
            .map(([a, b, c]) => `  ${a.padEnd(15)} ${b}${c ? `  (${c})` : ''}`)
            .join('\n') +
          '\n',
      );
    },
  );
}
