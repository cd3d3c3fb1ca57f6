import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { writeFileAtomic } from '../core/index.ts';
import { MIN_PATIENTS_FOR_VERDICT } from './bootstrap.ts';
import { writeChart } from './charts.ts';
import { fmtEstimate } from './metricsFiles.ts';
import type { SuiteSummary } from './robustness.ts';

/** Where a suite's run keeps a copy of its suite file (merging shards reads it back). */
export const SUITE_COPY = 'suite.yaml';

/** Corruption errors against the baseline: mCE over the corruptions, one-off conditions beside it. */
function corruptionLines(summary: SuiteSummary, f: (v: number | null) => string): string[] {
  const corruptions = summary.corruptionErrors.filter((c) => !c.oneOff);
  const oneOffs = summary.corruptionErrors.filter((c) => c.oneOff);
  if (summary.corruptionErrors.every((c) => c.ce === null)) return ['Corruption errors need a baseline model (--baseline).'];
  return [
    `mCE ${f(summary.mCE)} and relative mCE ${f(summary.relativeMCE)}: ImageNet-C's definitions, averaged over the ${corruptions.length} corruptions at severities 1-5 only${summary.relativeUndefined.length ? ` (relative CE undefined for ${summary.relativeUndefined.join(', ')}: the baseline's error did not move from clean)` : ''}. One-off conditions are reported beside, never averaged in.`,
    '',
    '| condition | kind | CE | relative CE |',
    '|---|---|---|---|',
    ...[...corruptions, ...oneOffs].map(
      (c) => `| ${c.condition} | ${c.oneOff ? 'one-off' : 'corruption (severities)'} | ${f(c.ce)} | ${f(c.relativeCe)} |`,
    ),
  ];
}

/** results.json, results.csv, summary.md and the charts of a suite's summary. */
export async function writeSuiteOutputs(out: string, summary: SuiteSummary): Promise<void> {
  await writeFileAtomic(
    join(out, 'results.json'),
    JSON.stringify(summary, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  // Unit results come back from JSON, where an undefined number (NaN) is null: both print empty.
  const x4 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '');
  const rows = summary.units.map((u) => [
    u.condition,
    u.severity,
    u.slides,
    x4(u.qwk.value),
    x4(u.qwk.ci95[0]),
    x4(u.qwk.ci95[1]),
    x4(u.qwkDrop),
    x4(u.accuracy.value),
    x4(u.ece),
    x4(u.oodFlagRate),
    x4(u.ce),
  ]);
  await writeFileAtomic(
    join(out, 'results.csv'),
    stringify([
      ['condition', 'severity', 'slides', 'qwk', 'qwk_ci_low', 'qwk_ci_high', 'qwk_drop', 'accuracy', 'ece', 'ood_flag_rate', 'ce'],
      ...rows,
    ]),
  );
  const f = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
  const md = [
    `# Robustness: ${summary.suite}`,
    '',
    `**${summary.passed ? 'PASS' : 'FAIL'}**: ${summary.criteria.filter((c) => c.pass).length} of ${summary.criteria.length} criteria pass${summary.criteria.some((c) => c.status === 'not-evaluable') ? ` (${summary.criteria.filter((c) => c.status === 'not-evaluable').length} not evaluable)` : ''}. Clean: QWK ${fmtEstimate(summary.clean.qwk)}, accuracy ${fmtEstimate(summary.clean.accuracy)} on ${summary.clean.slides} slides, ${summary.tilesPerSlide} tiles per slide, anomalous slides excluded.`,
    '',
    '| criterion | result | evidence |',
    '|---|---|---|',
    ...summary.criteria.map(
      (c) => `| ${c.criterion} | ${c.status === 'not-evaluable' ? 'NOT EVALUABLE' : c.pass ? 'PASS' : 'FAIL'} | ${c.evidence} |`,
    ),
    '',
    `QWK drops carry a paired 95% CI (the same slides, clean and perturbed, resampled by patient); a drop whose interval includes 0 is marked "n.s.": the data do not show it; "no verdict": fewer than ${MIN_PATIENTS_FOR_VERDICT} patients, or identical in every resample.`,
    '',
    `| condition | severity | QWK (95% CI) | QWK drop (paired 95% CI) | accuracy | ECE (change from clean ${f(summary.clean.ece)}) | OOD flag rate |`,
    '|---|---|---|---|---|---|---|',
    ...summary.units.map(
      (u) =>
        `| ${u.condition} | ${u.severity || '-'} | ${fmtEstimate(u.qwk)} | ${f(u.qwkDrop)}${u.qwkDropCi ? ` (${f(u.qwkDropCi[0])} to ${f(u.qwkDropCi[1])})${u.dropNote ? ' no verdict' : u.dropSignificant ? '' : ' n.s.'}` : ''} | ${f(u.accuracy.value)} | ${f(u.ece)} (${u.ece >= summary.clean.ece ? '+' : ''}${f(u.ece - summary.clean.ece)}) | ${f(u.oodFlagRate)} |`,
    ),
    '',
    ...(summary.severitySeparation.length
      ? [
          'Does severity matter? QWK at the highest severity minus at the lowest, paired on the same slides:',
          '',
          '| corruption | severities | QWK difference (95% CI) | separated |',
          '|---|---|---|---|',
          ...summary.severitySeparation.map(
            (s) =>
              `| ${s.condition} | ${s.low} vs ${s.high} | ${fmtEstimate(s.difference)} | ${s.note ? `no verdict: ${s.note}` : s.significant ? 'yes' : 'no: more slides needed to tell them apart'} |`,
          ),
          '',
        ]
      : []),
    ...corruptionLines(summary, f),
  ];
  await writeFileAtomic(join(out, 'summary.md'), `${md.join('\n')}\n`);
  const curve = summary.units
    .filter((u) => u.severity > 0)
    .map((u) => ({ condition: u.condition, severity: u.severity, qwk: u.qwk.value }));
  if (curve.length) {
    await writeChart(join(out, 'qwk-vs-severity'), {
      title: `QWK against severity (clean ${f(summary.clean.qwk.value)})`,
      width: 380,
      height: 260,
      data: { values: curve },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'severity', type: 'ordinal' },
        y: { field: 'qwk', type: 'quantitative', scale: { zero: false } },
        color: { field: 'condition', type: 'nominal' },
      },
    });
  }
  const heat = summary.units.map((u) => ({ condition: u.condition, severity: u.severity ? String(u.severity) : 'once', drop: u.qwkDrop }));
  await writeChart(join(out, 'qwk-drop-heatmap'), {
    title: 'QWK drop against clean',
    data: { values: heat },
    width: 200,
    height: Math.max(80, 22 * new Set(summary.units.map((u) => u.condition)).size),
    encoding: {
      x: { field: 'severity', type: 'ordinal', sort: ['once', '1', '2', '3', '4', '5'] },
      y: { field: 'condition', type: 'nominal' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'drop', type: 'quantitative', scale: { scheme: 'reds', domainMin: 0 } } } },
      { mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'drop', type: 'quantitative', format: '.2f' } } },
    ],
  });
}
