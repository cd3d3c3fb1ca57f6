import { join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../core/index.ts';
import type { Estimate } from './bootstrap.ts';
import type { MetricsReport } from './evaluate.ts';

const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
/** "0.845 (0.704-0.923)", or the value with why it has no interval. */
export const fmtEstimate = (e: Estimate, d = 3) =>
  Number.isFinite(e.ci95[0]) && Number.isFinite(e.ci95[1])
    ? `${f(e.value, d)} (${f(e.ci95[0], d)}-${f(e.ci95[1], d)})`
    : `${f(e.value, d)} (no interval${e.note ? `: ${e.note}` : ''})`;

/** How the intervals were made, in one sentence for every file and report section that prints them. */
export function intervalMethods(resamples: number, seed: number): string {
  return `95% CIs: proportions (accuracy, sensitivity, specificity, PPV, NPV) by Wilson's score interval and AUROC by Newcombe's score interval, both at the effective sample size after the design effect of patients with several slides; the other metrics by the BCa bootstrap over patients (${resamples} resamples, seed ${seed}). Neither collapses at 0 or 1; a bootstrap that gives one value in every resample prints no interval.`;
}

/** The evaluation set in words: how many slides and patients, the rule, and what was left out. */
export function evaluationSetText(r: Pick<MetricsReport, 'evaluationSet' | 'n' | 'patients'>): string[] {
  const s = r.evaluationSet;
  const byReason = (reason: string) => s.excluded.filter((e) => e.reason === reason);
  const lines = [`Evaluation set: ${r.n} slides from ${r.patients} patients: ${s.rule}.`];
  for (const reason of ['anomalous', 'ood-flagged'] as const) {
    const ex = byReason(reason);
    if (ex.length)
      lines.push(
        `Left out, ${reason}: ${ex.length} slide${ex.length === 1 ? '' : 's'} (${ex.map((e) => `${e.slideId}${e.detail ? ` ${e.detail}` : ''}`).join(', ')}); ${ex.filter((e) => e.label !== undefined && e.label === e.pred).length} of them graded as their label.`,
      );
  }
  return lines;
}

/** Where a metrics file's predictions came from (paths relative to the folder the metrics are in). */
export interface MetricsSource {
  model?: string;
  data?: string;
  split?: string;
  fold?: number;
  predictions?: string;
}

/** metrics.json: every metric as {value, ci95}, plus the tables behind the charts. */
export function metricsJson(r: MetricsReport, source: MetricsSource = {}): Record<string, unknown> {
  return {
    source,
    task: r.task,
    n: r.n,
    patients: r.patients,
    unlabelled: r.unlabelled,
    evaluation_set: r.evaluationSet,
    bootstrap: {
      unit: 'patient',
      resamples: r.resamples,
      seed: r.seed,
      interval: 'BCa 95%; proportions: Wilson score; AUROC: Newcombe score (effective sample size after the patient design effect)',
    },
    ...r.metrics,
    confusion: r.confusion,
    class_names: r.classNames,
    per_class: r.perClass,
    cutoffs: r.cutoffs.map(({ roc, pr, ...rest }) => rest),
    reliability: r.reliability,
    subgroups: r.subgroups,
    agreement: r.agreement ?? null,
    referral: r.referral,
    selective: r.selective,
  };
}

export function metricsMarkdown(r: MetricsReport, source: string): string {
  const m = r.metrics;
  const lines = [
    `# Grading metrics: ${source}`,
    '',
    `${r.n} labelled cases from ${r.patients} patients (${r.task}, ${r.k} classes)${r.unlabelled ? `; ${r.unlabelled} unlabelled rows left out` : ''}. ${intervalMethods(r.resamples, r.seed)}`,
    '',
    ...evaluationSetText(r),
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
  const s = r.selective;
  lines.push(
    '',
    `## Selective prediction (error rate ${f(s.risk)} at full coverage; oracle AURC ${f(s.oracleAurc)})`,
    '',
    '| uncertainty score | AURC | excess AURC (E-AURC) |',
    '|---|---|---|',
    ...s.scores.map((x) => `| ${x.score} | ${fmtEstimate(x.aurc)} | ${fmtEstimate(x.eaurc)} |`),
    '',
    ...(s.coverageAtSensitivity ?? []).map((c) =>
      c.coverage === null
        ? `- Sensitivity ${c.target} at ${c.cutoff} is not reached at any coverage down to 10%.`
        : `- Sensitivity ${c.target} at ${c.cutoff} is reached keeping ${Math.round(c.coverage * 100)}% of the cases.`,
    ),
    ...s.coverageAtQwk.map((c) =>
      c.coverage === null
        ? `- QWK ${c.target} is not reached at any coverage down to 10%.`
        : `- QWK ${c.target} is reached keeping ${Math.round(c.coverage * 100)}% of the cases (deferring the rest by the referral score).`,
    ),
  );
  return `${lines.join('\n')}\n`;
}

/** metrics.json and metrics.md in `dir`; the source's paths are stored relative to `dir`. */
export async function writeMetricsFiles(dir: string, r: MetricsReport, source: MetricsSource): Promise<string[]> {
  const rel = (p?: string) => p && (relative(resolve(dir), resolve(p)).split(sep).join('/') || '.');
  const stored = { ...source, model: rel(source.model), data: rel(source.data), predictions: rel(source.predictions) };
  await writeFileAtomic(
    join(dir, 'metrics.json'),
    JSON.stringify(metricsJson(r, stored), (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  const title = source.data
    ? `${source.model ?? 'model'} on ${source.data}${source.split ? ` (${source.split}${source.split === 'all' ? '' : `, fold ${source.fold ?? 0}`})` : ''}`
    : (source.predictions ?? 'predictions');
  await writeFileAtomic(join(dir, 'metrics.md'), metricsMarkdown(r, title));
  return [join(dir, 'metrics.json'), join(dir, 'metrics.md')];
}
