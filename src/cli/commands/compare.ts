import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, writeFileAtomic } from '../../core/index.ts';
import { trackedRun, trackingFlags } from '../trackedRun.ts';
import {
  comparePredictions,
  comparisonScope,
  describeComparison,
  inferTask,
  readPredictions,
  writeChart,
  type Comparison,
} from '../../eval/index.ts';

/** compare.json, compare.md and a forest chart of the paired differences. */
export async function writeComparison(out: string, c: Comparison): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeFileAtomic(
    join(out, 'compare.json'),
    JSON.stringify(c, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  const md = [
    `# ${c.nameB} vs ${c.nameA}`,
    '',
    `Paired patient bootstrap on the same ${c.slides} slides from ${c.patients} patients (${c.resamples} resamples, seed ${c.seed}): each resample draws patients once and scores both on them. ECE: lower is better.`,
    '',
    comparisonScope(c),
    '',
    `| metric | ${c.nameA} | ${c.nameB} | difference (B - A) | 95% CI | B better in | verdict |`,
    '|---|---|---|---|---|---|---|',
    ...c.metrics.map(
      (m) =>
        `| ${m.metric} | ${f(m.a)} | ${f(m.b)} | ${f(m.difference.value)} | ${f(m.difference.ci95[0])} to ${f(m.difference.ci95[1])} | ${(m.shareBBetter * 100).toFixed(0)}% | ${m.significant ? ((m.lowerIsBetter ? m.difference.value < 0 : m.difference.value > 0) ? 'B better' : 'A better') : 'no evidence of a difference (CI includes 0)'} |`,
    ),
    '',
  ];
  await writeFileAtomic(join(out, 'compare.md'), `${md.join('\n')}\n`);
  const values = c.metrics
    .filter((m) => Number.isFinite(m.difference.ci95[0]))
    .map((m) => ({ metric: m.metric, diff: m.difference.value, lo: m.difference.ci95[0], hi: m.difference.ci95[1] }));
  const metricAxis = { field: 'metric', type: 'nominal', title: null };
  await writeChart(join(out, 'compare-forest'), {
    title: `${c.nameB} minus ${c.nameA} (paired 95% CIs)`,
    width: 360,
    height: Math.max(80, 26 * values.length),
    data: { values },
    // y per layer, not shared: the zero line has no metric and spans the whole height.
    layer: [
      {
        mark: { type: 'rule' },
        encoding: { y: metricAxis, x: { field: 'lo', type: 'quantitative', title: 'difference (B - A)' }, x2: { field: 'hi' } },
      },
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { y: metricAxis, x: { field: 'diff', type: 'quantitative' } } },
      {
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: 'grey' },
        encoding: { x: { field: 'zero', type: 'quantitative' } },
      },
    ],
  });
}

export function compareCommand(y: Argv): Argv {
  return y.command(
    'compare',
    'Paired comparison of two predictions files on the same cases: the difference in QWK, accuracy, ECE and AUROC at the cut-offs, with a paired patient-bootstrap CI',
    (c) =>
      trackingFlags(c)
        .option('model', { type: 'string', describe: "the model B's predictions come from: the run is filed under its training run" })
        .option('pred', {
          type: 'string',
          array: true,
          demandOption: true,
          describe:
            'two arms, A then B (B is compared against A): --pred A.csv --pred B.csv, or several training runs of each recipe on the same cases: --pred A1.csv,A2.csv --pred B1.csv,B2.csv',
        })
        .option('name', { type: 'string', array: true, describe: 'names for A and B in the outputs' })
        .option('out', { type: 'string', demandOption: true })
        .option('task', { choices: ['prostate', 'breast'] as const, describe: 'clinical cut-offs (default: from the number of classes)' })
        .option('resamples', { type: 'number', default: 1000 })
        .option('seed', { type: 'number', default: 1 }),
    async (argv) => {
      if (argv.pred.length !== 2) throw new ConfigError(`give exactly two --pred arms (A then B), got ${argv.pred.length}`);
      if (argv.name && argv.name.length !== 2) throw new ConfigError(`--name takes two names (A then B), got ${argv.name.length}`);
      if (!Number.isInteger(argv.resamples) || argv.resamples < 100)
        throw new ConfigError(`--resamples must be an integer of at least 100, got ${argv.resamples}`);
      const [a, b] = argv.pred.map((arm) => arm.split(',').map((path) => readPredictions(path.trim())));
      const nameA = argv.name?.[0] ?? 'A';
      const nameB = argv.name?.[1] ?? 'B';
      const c = await trackedRun(
        {
          kind: 'compare',
          name: `compare ${nameB} vs ${nameA}`,
          modelDir: argv.model,
          trackingDir: argv['tracking-dir'],
          track: argv.track,
          params: { a: argv.pred[0], b: argv.pred[1] },
        },
        async () => {
          const result = comparePredictions(a, b, {
            task: inferTask(a[0].k, argv.task),
            resamples: argv.resamples,
            seed: argv.seed,
            nameA,
            nameB,
          });
          await writeComparison(argv.out, result);
          return {
            result,
            metrics: Object.fromEntries(
              result.metrics.map((m) => [`diff/${m.metric.replace(/[^A-Za-z0-9_./-]+/g, '_')}`, m.difference.value]),
            ),
            artifacts: [join(argv.out, 'compare.json'), join(argv.out, 'compare.md')],
          };
        },
      );
      process.stdout.write(`${describeComparison(c).join('\n')}\n`);
    },
  );
}
