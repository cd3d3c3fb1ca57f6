import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/index.ts';
import { writeChart } from './charts.ts';
import { comparisonScope, type Comparison } from './compare.ts';

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
    `Paired patient bootstrap on the same ${c.slides} slides from ${c.patients} patients (${c.evaluationSet.rule}) (${c.resamples} resamples, seed ${c.seed}): each resample draws patients once and scores both on them. ECE: lower is better.`,
    '',
    comparisonScope(c),
    '',
    `| metric | ${c.nameA} | ${c.nameB} | difference (B - A) | 95% CI | B better in | verdict |`,
    '|---|---|---|---|---|---|---|',
    ...c.metrics.map(
      (m) =>
        `| ${m.metric} | ${f(m.a)} | ${f(m.b)} | ${f(m.difference.value)} | ${f(m.difference.ci95[0])} to ${f(m.difference.ci95[1])} | ${(m.shareBBetter * 100).toFixed(0)}% | ${m.note ? `no verdict: ${m.note}` : m.significant ? ((m.lowerIsBetter ? m.difference.value < 0 : m.difference.value > 0) ? 'B better' : 'A better') : 'no evidence of a difference (CI includes 0)'} |`,
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
