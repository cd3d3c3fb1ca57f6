import { existsSync } from 'node:fs';
import { relative, sep } from 'node:path';
import {
  chartIf,
  comparisonScope,
  evaluationSetText,
  fmtEstimate,
  intervalMethods,
  MIN_PATIENTS_FOR_VERDICT,
  section,
  type ReportSection,
  worstCasesTable,
} from '../eval/index.ts';
import { gradeLabel } from '../view/index.ts';
import type { ReportInputs } from './reportInputs.ts';

// The report's sections on what the model was measured to do: performance, paired comparisons,
// referral, robustness, OOD detection, and the limitations and worst cases found.

/** An estimate as read back from JSON (NaN stored as null): value with its interval, or why it has none. */
const est = (e: any, d = 3) =>
  e && typeof e.value === 'number'
    ? fmtEstimate({ value: e.value, ci95: [e.ci95?.[0] ?? NaN, e.ci95?.[1] ?? NaN], note: e.note }, d)
    : 'n/a';
const width = (e: any) => (e && Number.isFinite(e.ci95?.[0]) && Number.isFinite(e.ci95?.[1]) ? (e.ci95[1] - e.ci95[0]).toFixed(3) : 'n/a');

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
      perf.text.push(...evaluationSetText({ evaluationSet: metrics.evaluation_set, n: metrics.n, patients: metrics.patients }));
    else
      perf.text.push(
        `${metrics.n} test slides from ${metrics.patients} patients (an evaluation from before the evaluation set was recorded).`,
      );
    perf.text.push(intervalMethods(metrics.bootstrap.resamples, metrics.bootstrap.seed));
    perf.tables.push({
      caption: 'Overall',
      header: ['metric', 'value (95% CI)', 'CI width'],
      rows: [
        ['QWK', metrics.qwk],
        ["Cohen's kappa", metrics.kappa],
        ['accuracy', metrics.accuracy],
        ['balanced accuracy', metrics.balanced_accuracy],
        ['mean absolute error', metrics.mae],
        ['AUROC (one-vs-rest)', metrics.auroc],
        ['Brier score', metrics.brier],
        ['ECE', metrics.ece],
      ].map(([n, e]) => [n, est(e), width(e)]),
    });
    const qwkWidth = metrics.qwk.ci95[1] - metrics.qwk.ci95[0];
    if (Number.isFinite(qwkWidth) && qwkWidth / 2 > 0.1)
      perf.text.push(
        `Warning: the QWK interval is ${qwkWidth.toFixed(3)} wide (half-width ${(qwkWidth / 2).toFixed(3)} > 0.10): too few test patients to pin the model's QWK down; evaluate on more.`,
      );
    perf.tables.push({
      caption: 'Clinical cut-offs',
      header: ['cut-off', 'prevalence', 'AUROC', 'sensitivity', 'specificity'],
      rows: metrics.cutoffs.map((c: any) => [c.name, c.prevalence.toFixed(3), est(c.auroc), est(c.sensitivity), est(c.specificity)]),
    });
    for (const key of ['site', 'scanner'])
      perf.tables.push({
        caption: `Per ${key}`,
        header: [key, 'slides', 'QWK', 'accuracy', 'QWK CI width'],
        rows: Object.entries(metrics.subgroups[key]).map(([g, s]: [string, any]) => [
          g,
          String(s.n),
          est(s.qwk),
          est(s.accuracy),
          width(s.qwk),
        ]),
      });
    // Kappa within one reference grade is undefined: accuracy and mean grade error there.
    perf.tables.push({
      caption: 'Per reference grade',
      header: ['grade', 'slides', 'accuracy', 'mean absolute grade error'],
      rows: Object.entries(metrics.subgroups.grade).map(([g, s]: [string, any]) => [g, String(s.n), est(s.accuracy), est(s.mae)]),
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
      caption: `${c!.nameB} vs ${c!.nameA} (${c!.slides} slides, ${c!.patients} patients)`,
      header: ['metric', c!.nameA, c!.nameB, 'difference (95% CI)', 'B better in', 'verdict'],
      rows: c!.metrics.map((m) => [
        m.metric,
        m.a.toFixed(3),
        m.b.toFixed(3),
        typeof m.difference.ci95[0] === 'number' && Number.isFinite(m.difference.ci95[0])
          ? `${m.difference.value.toFixed(3)} (${m.difference.ci95[0].toFixed(3)} to ${m.difference.ci95[1]!.toFixed(3)})`
          : `${m.difference.value.toFixed(3)} (no interval)`,
        `${(m.shareBBetter * 100).toFixed(0)}%`,
        verdict(m),
      ]),
    });
    const which = `${c!.nameB} vs ${c!.nameA}, ${c!.slides} slides`;
    cmp.text.push(`${which}: ${comparisonScope(c!)}`);
    if (c!.evaluationSet)
      cmp.text.push(
        `Compared on ${c!.slides} slides from ${c!.patients} patients: ${c!.evaluationSet.rule}${c!.evaluationSet.excluded.length ? ` (${c!.evaluationSet.excluded.length} left out)` : ''}.`,
      );
    if (c!.patients < MIN_PATIENTS_FOR_VERDICT)
      cmp.text.push(
        `Warning (${which}): ${c!.patients} patients are fewer than the ${MIN_PATIENTS_FOR_VERDICT} a verdict needs; the intervals are shown, no difference is claimed.`,
      );
    else {
      const unclear = c!.metrics.filter((m) => !m.significant).map((m) => m.metric);
      if (unclear.length)
        cmp.text.push(`Warning (${which}): the paired CI includes 0 for ${unclear.join(', ')}: these data do not show a difference there.`);
    }
    chartIf(cmp, `${c!.nameB} minus ${c!.nameA}`, dir, 'compare-forest.png');
  }
  return cmp;
}

/** A paired comparison's verdict: shown, not shown, or none (too few patients, nothing to compare). */
function verdict(m: { significant: boolean; note?: string; difference: { value: number } }): string {
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
        .filter((_: unknown, i: number) => i % 2 === 0)
        .map((p: any) => [
          `${Math.round(p.coverage * 100)}%`,
          String(p.kept),
          p.qwk === null ? 'n/a' : p.qwk.toFixed(3),
          p.accuracy.toFixed(3),
        ]),
    });
    chartIf(referral, 'Risk-coverage', inp.evalDir, 'risk-coverage.png');
  } else referral.missing.push('referral analysis (from --eval)');
  return referral;
}

/** 8: each suite, its criteria, the drops its data can resolve. */
export function robustnessSection(inp: ReportInputs): ReportSection {
  const { suites } = inp;
  const rob = section('robustness', 'Robustness');
  for (const { dir, r } of suites) {
    if (!r) {
      rob.missing.push(`robustness results in ${dir}`);
      continue;
    }
    const notEvaluable = r.criteria.filter((c: any) => c.status === 'not-evaluable').length;
    rob.text.push(
      `Suite ${r.suite}: ${r.passed ? 'all criteria pass' : notEvaluable ? `some criteria FAIL or are NOT EVALUABLE (${notEvaluable})` : 'some criteria FAIL'}; clean QWK ${est(r.clean.qwk)} on ${r.clean.slides} slides${r.tilesPerSlide ? `, ${r.tilesPerSlide} tiles per slide (a subsample: the clean grades are not the headline evaluation's)` : ''}, anomalous slides excluded; mCE ${r.mCE === null ? 'n/a' : r.mCE.toFixed(3)}, relative mCE ${r.relativeMCE === null ? 'n/a' : r.relativeMCE.toFixed(3)} against the baseline${r.relativeUndefined?.length ? ` (left out of relative mCE, the baseline's error did not move: ${r.relativeUndefined.join(', ')})` : ''}.`,
    );
    const drops = r.units.filter((u: any) => u.qwkDropCi);
    const patients = new Set((r.clean.slidePreds ?? []).map((p: any[]) => p[1])).size;
    if (drops.length && patients && patients < MIN_PATIENTS_FOR_VERDICT)
      rob.text.push(
        `No drop is claimed: the suite ran on ${patients} patients, fewer than the ${MIN_PATIENTS_FOR_VERDICT} a verdict needs (the paired intervals are in the suite's summary.md).`,
      );
    else if (drops.length) {
      rob.text.push(
        `${drops.filter((u: any) => u.dropSignificant).length} of ${drops.length} conditions show a QWK drop (or gain) whose paired 95% CI excludes 0; the others are within what ${r.clean.slides} slides can resolve.`,
      );
      for (const s of r.severitySeparation ?? [])
        if (!s.significant)
          rob.text.push(
            `${r.suite}, ${s.condition}: severity ${s.low} and ${s.high} are not told apart (paired QWK difference ${est(s.difference)}).`,
          );
    }
    rob.tables.push({
      caption: `${r.suite}: acceptance criteria`,
      header: ['criterion', 'result', 'evidence'],
      rows: r.criteria.map((c: any) => [
        c.criterion,
        c.status === 'not-evaluable' ? 'NOT EVALUABLE' : c.pass ? 'PASS' : 'FAIL',
        c.evidence,
      ]),
    });
    chartIf(rob, `${r.suite}: QWK drop per condition and severity`, dir, 'qwk-drop-heatmap.png');
  }
  if (!suites.length) rob.missing.push('robustness suites (run `gradelab robustness` and pass --robustness)');
  return rob;
}

/** 9: detectors, their AUROCs, and grading after rejection. */
export function oodSection(inp: ReportInputs): ReportSection {
  const { ood } = inp;
  const oodS = section('ood', 'Out-of-distribution detection');
  if (ood) {
    oodS.text.push(
      `${ood.idTiles} in-distribution test tiles against ${ood.oodTiles} tiles of anomalous slides; OOD positive; slide scores are top-k tile means. Primary detector ${ood.primary}, accepting ${(ood.accept * 100).toFixed(0)}% of in-distribution validation slides.`,
    );
    oodS.tables.push({
      caption: 'Per detector (AUROC with 95% CI)',
      header: ['detector', 'tiles', 'slides', 'near-OOD slides', 'far-OOD slides', 'FPR@95TPR slides'],
      rows: Object.entries(ood.detectors).map(([n, d]: [string, any]) => [
        n,
        est(d.all.tile.auroc),
        est(d.all.slide.auroc),
        d.groups.near ? est(d.groups.near.slide.auroc) : 'n/a',
        d.groups.far ? est(d.groups.far.slide.auroc) : 'n/a',
        est(d.all.slide.fpr95),
      ]),
    });
    const g = ood.gradingAfterRejection;
    oodS.facts.push([
      'Grading after rejection',
      `QWK ${g.all.qwk?.toFixed?.(3) ?? 'n/a'} on all ${g.all.slides} test slides; ${g.accepted.qwk?.toFixed?.(3) ?? 'n/a'} on the ${g.accepted.slides} accepted`,
    ]);
    chartIf(oodS, 'ROC per detector', inp.oodDir, 'ood-roc.png');
  } else oodS.missing.push('OOD evaluation (run `gradelab ood eval` and pass --ood)');
  return oodS;
}

/** 10: stated limitations, the worst conditions, the worst cases (linked into the viewer), the audit. */
export function limitationsSection(inp: ReportInputs): ReportSection {
  const { use, suites, predictions, viewers, meta, audit } = inp;
  const lim = section('limitations', 'Limitations and known failure modes');
  for (const l of use.limitations ?? []) lim.text.push(l);
  if (!use.limitations?.length) lim.missing.push('stated limitations (limitations)');
  const worst = suites
    .flatMap(({ r }) => (r ? r.units.filter((u: any) => u.condition !== 'clean').map((u: any) => ({ suite: r.suite, ...u })) : []))
    .sort((a: any, b: any) => b.qwkDrop - a.qwkDrop)
    .slice(0, 5);
  if (worst.length)
    lim.tables.push({
      caption: 'Worst conditions found (largest QWK drop)',
      header: ['suite', 'condition', 'severity', 'QWK', 'drop'],
      rows: worst.map((u: any) => [u.suite, u.condition, u.severity ? String(u.severity) : '-', est(u.qwk), u.qwkDrop.toFixed(3)]),
    });
  if (predictions) {
    // Worst cases among the slides the headline is about; slides out of scope are listed apart.
    const inSet = new Set<string>(inp.metrics?.evaluation_set?.slides ?? predictions.rows.map((r) => r.slideId));
    lim.tables.push(
      worstCasesTable(
        predictions.rows.filter((r) => inSet.has(r.slideId)),
        (c) => gradeLabel(meta.classes, c),
        viewers.length ? viewerLink(viewers, inp.outDir) : undefined,
      ),
    );
    const excluded: any[] = inp.metrics?.evaluation_set?.excluded ?? [];
    if (excluded.length)
      lim.tables.push({
        caption: `Slides outside the evaluation set (${excluded.length}): not in the headline metrics`,
        header: ['slide', 'patient', 'reason', 'reference', 'predicted'],
        rows: excluded.map((e) => [
          e.slideId,
          e.patientId,
          e.detail ? `${e.reason}: ${e.detail}` : e.reason,
          e.label === undefined || e.label === null ? '-' : gradeLabel(meta.classes, e.label),
          gradeLabel(meta.classes, e.pred),
        ]),
      });
  } else if (inp.evalDir) lim.missing.push(`worst cases (predictions.csv in ${inp.evalDir}; gradelab eval writes it)`);
  if (audit)
    lim.tables.push({
      caption: `Audit of ${audit.source?.site ?? 'the new site'} (${audit.site?.slides ?? '?'} slides, ${audit.site?.patients ?? '?'} patients)`,
      header: ['finding'],
      rows: audit.findings.map((f: string) => [f]),
    });
  return lim;
}

/** Where each slide opens in the first viewer export that holds it, relative to the report's folder. */
function viewerLink(viewers: ReportInputs['viewers'], reportDir: string) {
  return (slideId: string) => {
    const v = viewers.find((x) => x.slideIds.includes(slideId));
    return v && `${relative(reportDir, v.page).split(sep).join('/')}#slide=${encodeURIComponent(slideId)}&overlay=grade`;
  };
}
