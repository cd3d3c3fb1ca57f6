import {
  comparisonScope,
  evaluationSetText,
  fmtEstimate,
  intervalMethods,
  MIN_PATIENTS_FOR_VERDICT,
  type EstimateJson,
  type EvaluationSet,
} from '../eval/index.ts';
import { chartIf, section, type ReportSection } from './document.ts';
import type { ReportInputs } from './inputs.ts';

// The report's sections on what the model was measured to do: performance, paired comparisons,
// referral, robustness, OOD detection, and the limitations and worst cases found.

/** A number read back from JSON (NaN is stored as null) as a number again. */
export const n = (v: number | null | undefined): number => (typeof v === 'number' ? v : NaN);

/** An estimate as read back from JSON: value with its interval, or why it has none. */
export const est = (e: EstimateJson | undefined, d = 3): string =>
  e && typeof e.value === 'number' ? fmtEstimate({ value: e.value, ci95: [n(e.ci95[0]), n(e.ci95[1])], note: e.note }, d) : 'n/a';
const width = (e: EstimateJson | undefined) => {
  const w = e ? n(e.ci95[1]) - n(e.ci95[0]) : NaN;
  return Number.isFinite(w) ? w.toFixed(3) : 'n/a';
};

/** 5: metrics with patient-bootstrap CIs, cut-offs, subgroups and charts. */
export function performanceSection(inp: ReportInputs): ReportSection {
  const { metrics } = inp;
  const perf = section('performance', 'Performance');
  if (metrics) {
    const src = metrics.source ?? {};
    if (src.data)
      perf.text.push(
        `Evaluated on ${src.data}${src.split ? ` (${src.split === 'all' ? 'every slide' : `the ${src.split} partition of fold ${src.fold ?? 0}`})` : ''}, as given to gradelab eval (paths relative to ${inp.evalDir ? 'the evaluation folder' : 'it'}).`,
      );
    if (metrics.evaluation_set)
      perf.text.push(
        ...evaluationSetText({ evaluationSet: metrics.evaluation_set as EvaluationSet, n: metrics.n, patients: metrics.patients }),
      );
    else
      perf.text.push(
        `${metrics.n} test slides from ${metrics.patients} patients (an evaluation from before the evaluation set was recorded).`,
      );
    perf.text.push(intervalMethods(metrics.bootstrap.resamples, metrics.bootstrap.seed));
    perf.tables.push({
      caption: 'Overall',
      header: ['metric', 'value (95% CI)', 'CI width'],
      rows: (
        [
          ['QWK', metrics.qwk],
          ["Cohen's kappa", metrics.kappa],
          ['accuracy', metrics.accuracy],
          ['balanced accuracy', metrics.balanced_accuracy],
          ['mean absolute error', metrics.mae],
          ['AUROC (one-vs-rest)', metrics.auroc],
          ['Brier score', metrics.brier],
          ['ECE', metrics.ece],
        ] as [string, EstimateJson | undefined][]
      ).map(([name, e]) => [name, est(e), width(e)]),
    });
    const qwkWidth = n(metrics.qwk.ci95[1]) - n(metrics.qwk.ci95[0]);
    if (Number.isFinite(qwkWidth) && qwkWidth / 2 > 0.1)
      perf.text.push(
        `Warning: the QWK interval is ${qwkWidth.toFixed(3)} wide (half-width ${(qwkWidth / 2).toFixed(3)} > 0.10): too few test patients to pin the model's QWK down; evaluate on more.`,
      );
    perf.tables.push({
      caption: 'Clinical cut-offs',
      header: ['cut-off', 'prevalence', 'AUROC', 'sensitivity', 'specificity'],
      rows: metrics.cutoffs.map((c) => [c.name, c.prevalence.toFixed(3), est(c.auroc), est(c.sensitivity), est(c.specificity)]),
    });
    for (const key of ['site', 'scanner'] as const)
      perf.tables.push({
        caption: `Per ${key}`,
        header: [key, 'slides', 'QWK', 'accuracy', 'QWK CI width'],
        rows: Object.entries(metrics.subgroups[key]).map(([g, s]) => [g, String(s.n), est(s.qwk), est(s.accuracy), width(s.qwk)]),
      });
    // Kappa within one reference grade is undefined: accuracy and mean grade error there.
    perf.tables.push({
      caption: 'Per reference grade',
      header: ['grade', 'slides', 'accuracy', 'mean absolute grade error'],
      rows: Object.entries(metrics.subgroups.grade).map(([g, s]) => [g, String(s.n), est(s.accuracy), est(s.mae)]),
    });
    for (const [t, f] of [
      ['Confusion matrix', 'confusion.png'],
      ['ROC at the clinical cut-offs', 'roc.png'],
      ['Reliability (calibration)', 'reliability.png'],
      ['QWK per site', 'per-site.png'],
    ])
      chartIf(perf, t, inp.evalDir, f);
  } else perf.missing.push('performance (run `gradelab eval` and pass --eval)');
  return perf;
}

/** 6 (when given): paired differences between two models on the same cases. */
export function comparisonsSection(inp: ReportInputs): ReportSection | undefined {
  const { comparisons } = inp;
  if (!comparisons.length) return undefined;
  const cmp = section('comparisons', 'Paired comparisons');
  cmp.text.push(
    'Differences between two models (or conditions) on the same cases, with 95% CIs from a paired patient bootstrap: each resample draws patients once and scores both. Two separate intervals that overlap say little; the paired interval of the difference is the evidence.',
  );
  for (const { dir, c } of comparisons) {
    cmp.tables.push({
      caption: `${c.nameB} vs ${c.nameA} (${c.slides} slides, ${c.patients} patients)`,
      header: ['metric', c.nameA, c.nameB, 'difference (95% CI)', 'B better in', 'verdict'],
      rows: c.metrics.map((m) => [
        m.metric,
        m.a.toFixed(3),
        m.b.toFixed(3),
        Number.isFinite(n(m.difference.ci95[0]))
          ? `${n(m.difference.value).toFixed(3)} (${n(m.difference.ci95[0]).toFixed(3)} to ${n(m.difference.ci95[1]).toFixed(3)})`
          : `${n(m.difference.value).toFixed(3)} (no interval)`,
        Number.isFinite(n(m.shareBBetter)) ? `${(n(m.shareBBetter) * 100).toFixed(0)}%` : 'n/a',
        verdict(m),
      ]),
    });
    const which = `${c.nameB} vs ${c.nameA}, ${c.slides} slides`;
    cmp.text.push(`${which}: ${comparisonScope(c!)}`);
    if (c.evaluationSet)
      cmp.text.push(
        `Compared on ${c.slides} slides from ${c.patients} patients: ${c.evaluationSet.rule}${c.evaluationSet.excluded.length ? ` (${c.evaluationSet.excluded.length} left out)` : ''}.`,
      );
    if (c.patients < MIN_PATIENTS_FOR_VERDICT)
      cmp.text.push(
        `Warning (${which}): ${c.patients} patients are fewer than the ${MIN_PATIENTS_FOR_VERDICT} a verdict needs; the intervals are shown, no difference is claimed.`,
      );
    else {
      const unclear = c.metrics.filter((m) => !m.significant).map((m) => m.metric);
      if (unclear.length)
        cmp.text.push(`Warning (${which}): the paired CI includes 0 for ${unclear.join(', ')}: these data do not show a difference there.`);
    }
    chartIf(cmp, `${c.nameB} minus ${c.nameA}`, dir, 'compare-forest.png');
  }
  return cmp;
}

/** A paired comparison's verdict: shown, not shown, or none (too few patients, nothing to compare). */
function verdict(m: { significant: boolean; note?: string }): string {
  if (m.note) return `no verdict: ${m.note}`;
  if (m.significant) return 'difference shown';
  return 'CI includes 0: no evidence of a difference';
}

/** 7: what the model achieves on the cases it keeps when it defers the least certain. */
export function referralSection(inp: ReportInputs): ReportSection {
  const { metrics } = inp;
  const referral = section('referral', 'Referral analysis');
  if (metrics) {
    referral.text.push(
      `Deferring the least certain cases (uncertainty: ${metrics.referral.uncertainty}) to a pathologist; area under the risk-coverage curve ${metrics.referral.aurc.toFixed(3)}.`,
    );
    referral.tables.push({
      caption: 'Model performance on the cases it keeps',
      header: ['model keeps', 'cases', 'QWK', 'accuracy'],
      rows: metrics.referral.curve
        .filter((_, i) => i % 2 === 0)
        .map((p) => [`${Math.round(p.coverage * 100)}%`, String(p.kept), p.qwk === null ? 'n/a' : p.qwk.toFixed(3), p.accuracy.toFixed(3)]),
    });
    const sel = metrics.selective;
    if (sel) {
      referral.tables.push({
        caption: `Selective prediction: area under the risk-coverage curve per uncertainty score (error rate ${sel.risk.toFixed(3)} at full coverage; a perfect score gives ${sel.oracleAurc.toFixed(3)})`,
        header: ['uncertainty score', 'AURC (95% CI)', 'excess AURC over the oracle (95% CI)'],
        rows: sel.scores.map((s) => [s.score, est(s.aurc), est(s.eaurc)]),
      });
      referral.text.push(
        sel.coverageAtQwk
          .map((c) =>
            c.coverage === null
              ? `QWK ${c.target} is not reached at any coverage down to 10%`
              : `QWK ${c.target} is reached keeping ${Math.round(c.coverage * 100)}% of the cases`,
          )
          .concat(
            (sel.coverageAtSensitivity ?? []).map((c) =>
              c.coverage === null
                ? `sensitivity ${c.target} at ${c.cutoff} is not reached at any coverage down to 10%`
                : `sensitivity ${c.target} at ${c.cutoff} is reached keeping ${Math.round(c.coverage * 100)}% of the cases`,
            ),
          )
          .join('; ') + ' (deferring by the referral score).',
      );
    }
    chartIf(referral, 'Risk-coverage', inp.evalDir, 'risk-coverage.png');
  } else referral.missing.push('referral analysis (from --eval)');
  return referral;
}
