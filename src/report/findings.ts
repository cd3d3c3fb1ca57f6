import { relative, sep } from 'node:path';
import { MIN_PATIENTS_FOR_VERDICT } from '../eval/index.ts';
import { gradeLabel } from '../view/index.ts';
import { chartIf, section, type ReportSection } from './document.ts';
import { est, n } from './evidence.ts';
import type { ReportInputs } from './inputs.ts';
import { worstCasesTable } from './worstCases.ts';

// The report's sections on what can go wrong: robustness, OOD detection, limitations and worst cases.

/** 8: each suite, its criteria, the drops its data can resolve. */
export function robustnessSection(inp: ReportInputs): ReportSection {
  const { suites } = inp;
  const rob = section('robustness', 'Robustness');
  for (const { dir, r } of suites) {
    if (!r) {
      rob.missing.push(`robustness results in ${dir}`);
      continue;
    }
    const notEvaluable = r.criteria.filter((c) => c.status === 'not-evaluable').length;
    rob.text.push(
      `Suite ${r.suite}: ${r.passed ? 'all criteria pass' : notEvaluable ? `some criteria FAIL or are NOT EVALUABLE (${notEvaluable})` : 'some criteria FAIL'}; clean QWK ${est(r.clean.qwk)} on ${r.clean.slides} slides${r.tilesPerSlide ? `, ${r.tilesPerSlide} tiles per slide (a subsample: the clean grades are not the headline evaluation's)` : ''}, anomalous slides excluded; mCE ${r.mCE === null ? 'n/a' : r.mCE.toFixed(3)}, relative mCE ${r.relativeMCE === null ? 'n/a' : r.relativeMCE.toFixed(3)} against the baseline${r.relativeUndefined?.length ? ` (left out of relative mCE, the baseline's error did not move: ${r.relativeUndefined.join(', ')})` : ''}.`,
    );
    const drops = r.units.filter((u) => u.qwkDropCi);
    const patients = new Set((r.clean.slidePreds ?? []).map((p) => p[1])).size;
    if (drops.length && patients && patients < MIN_PATIENTS_FOR_VERDICT)
      rob.text.push(
        `No drop is claimed: the suite ran on ${patients} patients, fewer than the ${MIN_PATIENTS_FOR_VERDICT} a verdict needs (the paired intervals are in the suite's summary.md).`,
      );
    else if (drops.length) {
      rob.text.push(
        `${drops.filter((u) => u.dropSignificant).length} of ${drops.length} conditions show a QWK drop (or gain) whose paired 95% CI excludes 0; the others are within what ${r.clean.slides} slides can resolve.`,
      );
      for (const s of r.severitySeparation ?? [])
        if (!s.significant)
          rob.text.push(
            `${r.suite}, ${s.condition}: severity ${s.low} and ${s.high} are not told apart (paired QWK difference ${est(s.difference)}).`,
          );
    }
    // Calibration under shift: AUC often holds while calibration does not, so the ECE moves are stated.
    const cleanEce = r.clean.ece;
    const worstEce = r.units.filter((u) => typeof u.ece === 'number').sort((a, b) => (b.ece as number) - (a.ece as number))[0];
    if (typeof cleanEce === 'number' && worstEce)
      rob.text.push(
        `${r.suite}, calibration under shift: ECE ${cleanEce.toFixed(3)} clean, highest ${(worstEce.ece as number).toFixed(3)} under ${worstEce.condition}${worstEce.severity ? ` severity ${worstEce.severity}` : ''} (every condition's ECE is in the suite's summary.md).`,
      );
    rob.tables.push({
      caption: `${r.suite}: acceptance criteria`,
      header: ['criterion', 'result', 'evidence'],
      rows: r.criteria.map((c) => [c.criterion, c.status === 'not-evaluable' ? 'NOT EVALUABLE' : c.pass ? 'PASS' : 'FAIL', c.evidence]),
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
      rows: Object.entries(ood.detectors).map(([name, d]) => [
        name,
        est(d.all.tile?.auroc),
        est(d.all.slide.auroc),
        d.groups.near ? est(d.groups.near.slide.auroc) : 'n/a',
        d.groups.far ? est(d.groups.far.slide.auroc) : 'n/a',
        est(d.all.slide.fpr95),
      ]),
    });
    const g = ood.gradingAfterRejection;
    oodS.facts.push([
      'Grading after rejection',
      `QWK ${g.all.qwk?.toFixed(3) ?? 'n/a'} on all ${g.all.slides} test slides; ${g.accepted.qwk?.toFixed(3) ?? 'n/a'} on the ${g.accepted.slides} accepted`,
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
    .flatMap(({ r }) => (r ? r.units.filter((u) => u.condition !== 'clean').map((u) => ({ suite: r.suite, ...u })) : []))
    .sort((a, b) => n(b.qwkDrop) - n(a.qwkDrop))
    .slice(0, 5);
  if (worst.length)
    lim.tables.push({
      caption: 'Worst conditions found (largest QWK drop)',
      header: ['suite', 'condition', 'severity', 'QWK', 'drop'],
      rows: worst.map((u) => [u.suite, u.condition, u.severity ? String(u.severity) : '-', est(u.qwk), n(u.qwkDrop).toFixed(3)]),
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
    const excluded = inp.metrics?.evaluation_set?.excluded ?? [];
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
