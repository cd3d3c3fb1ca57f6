import { existsSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { chartIf, comparisonScope, section, type ReportSection, worstCasesTable } from '../eval/index.ts';
import { gradeLabel } from '../view/index.ts';
import type { ReportInputs } from './reportInputs.ts';

// The report's sections on what the model was measured to do: performance, paired comparisons,
// referral, robustness, OOD detection, and the limitations and worst cases found.

const est = (e: any, d = 3) =>
  e && typeof e.value === 'number'
    ? `${e.value.toFixed(d)} (${e.ci95?.[0] === null || e.ci95?.[0] === undefined ? 'n/a' : e.ci95[0].toFixed(d)}-${e.ci95?.[1] === null || e.ci95?.[1] === undefined ? 'n/a' : e.ci95[1].toFixed(d)})`
    : 'n/a';
const width = (e: any) => (e && Number.isFinite(e.ci95?.[0]) && Number.isFinite(e.ci95?.[1]) ? (e.ci95[1] - e.ci95[0]).toFixed(3) : 'n/a');

/** 5: metrics with patient-bootstrap CIs, cut-offs, subgroups and charts. */
export function performanceSection(inp: ReportInputs): ReportSection {
  const { metrics } = inp;
  const perf = section('performance', 'Performance');
  if (metrics) {
    perf.text.push(
      `${metrics.n} test slides from ${metrics.patients} patients. 95% confidence intervals: percentile bootstrap over patients, ${metrics.bootstrap.resamples} resamples, seed ${metrics.bootstrap.seed}.`,
    );
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
        `${m.difference.value.toFixed(3)} (${m.difference.ci95[0]?.toFixed?.(3) ?? 'n/a'} to ${m.difference.ci95[1]?.toFixed?.(3) ?? 'n/a'})`,
        `${(m.shareBBetter * 100).toFixed(0)}%`,
        m.significant ? 'difference shown' : 'CI includes 0: no evidence of a difference',
      ]),
    });
    const which = `${c!.nameB} vs ${c!.nameA}, ${c!.slides} slides`;
    cmp.text.push(`${which}: ${comparisonScope(c!)}`);
    const unclear = c!.metrics.filter((m) => !m.significant).map((m) => m.metric);
    if (unclear.length)
      cmp.text.push(`Warning (${which}): the paired CI includes 0 for ${unclear.join(', ')}: these data do not show a difference there.`);
    chartIf(cmp, `${c!.nameB} minus ${c!.nameA}`, dir, 'compare-forest.png');
  }
  return cmp;
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
    rob.text.push(
      `Suite ${r.suite}: ${r.passed ? 'all criteria pass' : 'some criteria FAIL'}; clean QWK ${est(r.clean.qwk)}; mCE ${r.mCE === null ? 'n/a' : r.mCE.toFixed(3)}, relative mCE ${r.relativeMCE === null ? 'n/a' : r.relativeMCE.toFixed(3)} against the baseline.`,
    );
    const drops = r.units.filter((u: any) => u.qwkDropCi);
    if (drops.length)
      rob.text.push(
        `${drops.filter((u: any) => u.dropSignificant).length} of ${drops.length} conditions show a QWK drop (or gain) whose paired 95% CI excludes 0; the others are within what ${r.clean.slides} slides can resolve.`,
      );
    for (const s of r.severitySeparation ?? [])
      if (!s.significant)
        rob.text.push(
          `${r.suite}, ${s.condition}: severity ${s.low} and ${s.high} are not told apart (paired QWK difference ${est(s.difference)}).`,
        );
    rob.tables.push({
      caption: `${r.suite}: acceptance criteria`,
      header: ['criterion', 'result', 'evidence'],
      rows: r.criteria.map((c: any) => [c.criterion, c.pass ? 'PASS' : 'FAIL', c.evidence]),
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
  if (predictions)
    lim.tables.push(
      worstCasesTable(predictions.rows, (c) => gradeLabel(meta.classes, c), viewers.length ? viewerLink(viewers, inp.outDir) : undefined),
    );
  else if (inp.evalDir) lim.missing.push(`worst cases (predictions.csv in ${inp.evalDir}; gradelab eval writes it)`);
  if (audit) lim.tables.push({ caption: `Audit of ${audit.site}`, header: ['finding'], rows: audit.findings.map((f: string) => [f]) });
  return lim;
}

/** Where each slide opens in the first viewer export that holds it, relative to the report's folder. */
function viewerLink(viewers: ReportInputs['viewers'], reportDir: string) {
  return (slideId: string) => {
    const v = viewers.find((x) => x.slideIds.includes(slideId));
    return v && `${relative(reportDir, v.page).split(sep).join('/')}#slide=${encodeURIComponent(slideId)}`;
  };
}
