import { join } from 'node:path';
import { writeFileAtomic } from '../core/index.ts';
import type { Estimate } from './bootstrap.ts';
import type { MetricsReport } from './evaluate.ts';

const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
export const fmtEstimate = (e: Estimate, d = 3) => `${f(e.value, d)} (${f(e.ci95[0], d)}-${f(e.ci95[1], d)})`;

/** metrics.json: every metric as {value, ci95}, plus the tables behind the charts. */
export function metricsJson(r: MetricsReport): Record<string, unknown> {
  return {
    task: r.task,
    n: r.n,
    patients: r.patients,
    unlabelled: r.unlabelled,
    bootstrap: { unit: 'patient', resamples: r.resamples, seed: r.seed, interval: 'percentile 95%' },
    ...r.metrics,
    confusion: r.confusion,
    class_names: r.classNames,
    per_class: r.perClass,
    cutoffs: r.cutoffs.map(({ roc, pr, ...rest }) => rest),
    reliability: r.reliability,
    subgroups: r.subgroups,
    agreement: r.agreement ?? null,
    referral: r.referral,
  };
}

export function metricsMarkdown(r: MetricsReport, source: string): string {
  const m = r.metrics;
  const lines = [
    `# Grading metrics: ${source}`,
    '',
    `${r.n} labelled cases from ${r.patients} patients (${r.task}, ${r.k} classes)${r.unlabelled ? `; ${r.unlabelled} unlabelled rows left out` : ''}. 95% CIs: percentile bootstrap over patients, ${r.resamples} resamples, seed ${r.seed}.`,
    '',
    '| metric | value (95% CI) |',
    '|---|---|',
    `| quadratic weighted kappa | ${fmtEstimate(m.qwk)} |`,
    `| Cohen's kappa | ${fmtEstimate(m.kappa)} |`,
    `| linear weighted kappa | ${fmtEstimate(m.kappa_linear)} |`,
    `| accuracy | ${fmtEstimate(m.accuracy)} |`,
    `| balanced accuracy | ${fmtEstimate(m.balanced_accuracy)} |`,
    `| mean absolute grade error | ${fmtEstimate(m.mae)} |`,
    `| Brier score | ${fmtEstimate(m.brier)} |`,
    `| expected calibration error (15 bins) | ${fmtEstimate(m.ece)} |`,
    ...(m.auroc ? [`| AUROC, one-vs-rest macro | ${fmtEstimate(m.auroc)} |`] : []),
    '',
    '## Clinical cut-offs',
    '',
    '| cut-off | prevalence | AUROC | AUPR | sensitivity | specificity |',
    '|---|---|---|---|---|---|',
    ...r.cutoffs.map(
      (c) =>
        `| ${c.name} | ${f(c.prevalence)} | ${fmtEstimate(c.auroc)} | ${fmtEstimate(c.aupr)} | ${fmtEstimate(c.sensitivity)} | ${fmtEstimate(c.specificity)} |`,
    ),
    '',
    '## Per class',
    '',
    '| class | support | sensitivity | specificity | PPV | NPV | AUROC |',
    '|---|---|---|---|---|---|---|',
    ...r.perClass.map(
      (c) =>
        `| ${c.name} | ${c.support} | ${fmtEstimate(c.sensitivity)} | ${fmtEstimate(c.specificity)} | ${fmtEstimate(c.ppv)} | ${fmtEstimate(c.npv)} | ${fmtEstimate(c.auroc)} |`,
    ),
    '',
    '## Confusion matrix (rows: reference, columns: predicted)',
    '',
    `| | ${r.classNames.join(' | ')} |`,
    `|---|${r.classNames.map(() => '---').join('|')}|`,
    ...r.confusion.map((row, i) => `| ${r.classNames[i]} | ${row.join(' | ')} |`),
  ];
  for (const key of ['site', 'scanner'] as const) {
    lines.push('', `## Per ${key}`, '', '| group | cases | patients | QWK | accuracy | MAE |', '|---|---|---|---|---|---|');
    for (const [g, s] of Object.entries(r.subgroups[key]))
      lines.push(
        `| ${g} | ${s.n} | ${s.patients} | ${s.qwk ? fmtEstimate(s.qwk) : 'n/a'} | ${fmtEstimate(s.accuracy)} | ${fmtEstimate(s.mae)} |`,
      );
  }
  // Within one true grade kappa is undefined: the share graded right and how far off the rest are.
  lines.push(
    '',
    '## Per grade (reference)',
    '',
    '| grade | cases | patients | accuracy | mean absolute grade error |',
    '|---|---|---|---|---|',
  );
  for (const [g, s] of Object.entries(r.subgroups.grade))
    lines.push(`| ${g} | ${s.n} | ${s.patients} | ${fmtEstimate(s.accuracy)} | ${fmtEstimate(s.mae)} |`);
  if (r.agreement) {
    const a = r.agreement;
    lines.push(
      '',
      '## Agreement',
      '',
      `${a.raters.length} raters; ${a.cases} cases rated by all. Fleiss' kappa ${f(a.fleiss)}; mean pairwise QWK among raters ${f(a.meanRaterQwk)}.`,
      '',
      '| pair | kappa | QWK |',
      '|---|---|---|',
    );
    for (const p of a.pairwise) lines.push(`| ${p.a} vs ${p.b} | ${f(p.kappa)} | ${f(p.qwk)} |`);
    lines.push('', '| rater | QWK of the model against the rater |', '|---|---|');
    for (const v of a.modelVsRater) lines.push(`| ${v.rater} | ${fmtEstimate(v.qwk)} |`);
  }
  lines.push(
    '',
    `## Referral (uncertainty: ${r.referral.uncertainty}; AURC ${f(r.referral.aurc)})`,
    '',
    '| model keeps | cases | QWK | accuracy |',
    '|---|---|---|---|',
  );
  for (const p of r.referral.curve.filter((_, i) => i % 2 === 0))
    lines.push(`| ${Math.round(p.coverage * 100)}% | ${p.kept} | ${f(p.qwk)} | ${f(p.accuracy)} |`);
  return `${lines.join('\n')}\n`;
}

export async function writeMetricsFiles(dir: string, r: MetricsReport, source: string): Promise<string[]> {
  await writeFileAtomic(
    join(dir, 'metrics.json'),
    JSON.stringify(metricsJson(r), (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  await writeFileAtomic(join(dir, 'metrics.md'), metricsMarkdown(r, source));
  return [join(dir, 'metrics.json'), join(dir, 'metrics.md')];
}
