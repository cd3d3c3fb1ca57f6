import type { SiteAudit } from './audit.ts';
import { fmtEstimate } from './metricsFiles.ts';

/**
 * The audit's findings in words, each claim with its interval and the numbers behind it. A claim the
 * interval does not support is worded as inconclusive, and a comparison on fewer patients than a verdict
 * needs states no verdict.
 */
export function auditFindings(a: Omit<SiteAudit, 'findings'>, minPatients: number): string[] {
  const findings: string[] = [];
  const s = a.representationShift;
  const [lo, hi] = s.value.ci95;
  const ratio = (v: number) => v / (s.withinTraining || 1e-9);
  const shiftText = `representation shift ${fmtEstimate(s.value)} on ${s.tiles.site} site tiles is ${s.ratio.toFixed(1)}x the shift between two halves of the training data (${s.withinTraining.toFixed(3)})`;
  if (Number.isFinite(lo) && ratio(lo) > 2) findings.push(`The new site looks different to the model: ${shiftText}.`);
  else if (Number.isFinite(hi) && ratio(hi) < 2) findings.push(`The new site looks like the training data to the model: ${shiftText}.`);
  else
    findings.push(
      `Inconclusive whether the site looks different to the model: ${shiftText}; the interval spans 2x the within-training shift.`,
    );
  const sep = a.separability;
  const decoded = sep.decodability;
  findings.push(
    `A linear probe on the model's features tells the site's tiles from the training tiles at balanced accuracy ${fmtEstimate(decoded)} (0.5: indistinguishable; out of fold over patients)${sep.ri ? `; among each labelled tile's nearest neighbours from other patients, ${fmtEstimate(sep.ri)} of those that share either its grade or its source share its grade (RI, k = ${sep.ri.k}; 1: tiles sit with their grade, 0: with their source)` : ''}.`,
  );
  if (a.oodFlagRate)
    findings.push(
      `${(a.oodFlagRate.value * 100).toFixed(0)}% of the site's ${a.oodFlagRate.slides} slides are flagged out-of-distribution by ${a.oodFlagRate.detector} (95% CI ${(a.oodFlagRate.ci95[0] * 100).toFixed(0)}-${(a.oodFlagRate.ci95[1] * 100).toFixed(0)}%; the detector flags 5% of training-like validation slides by calibration).`,
    );
  const c = a.colour;
  findings.push(
    `Stain vectors differ from the training sites' by ${fmtEstimate(c.angleDegrees.h, 1)} degrees (haematoxylin) and ${fmtEstimate(c.angleDegrees.e, 1)} degrees (eosin); mean optical density H ${c.site.meanH.toFixed(3)} vs ${c.trainingPooled.meanH.toFixed(3)}, E ${c.site.meanE.toFixed(3)} vs ${c.trainingPooled.meanE.toFixed(3)}.`,
  );
  findings.push(
    `Predicted grades of the site's ${a.site.slides} slides differ from the training slides' grade distribution by a total variation of ${fmtEstimate(a.gradeDistribution.totalVariation, 2)}.`,
  );
  const p = a.performance;
  if (p) {
    findings.push(
      `On the site's ${p.slides} labelled slides in the evaluation set (${p.patients} patients; ${p.evaluationSet.excluded.length} left out: ${p.evaluationSet.rule.replace(/^every labelled slide except /, '')}): QWK ${fmtEstimate(p.qwk)}, accuracy ${fmtEstimate(p.accuracy)}.${p.patients < minPatients ? ` Too few patients (fewer than ${minPatients}) to rely on these figures.` : ''}`,
    );
  }
  const n = a.normalisation;
  const q = n.qwk;
  let normText = `Macenko normalisation to the training reference changes the representation shift from ${s.value.value.toFixed(3)} to ${n.shiftAfter.toFixed(3)}`;
  if (q) {
    const d = q.difference;
    const interval = Number.isFinite(d.ci95[0])
      ? `, paired difference ${d.value.toFixed(3)} (95% CI ${d.ci95[0].toFixed(3)} to ${d.ci95[1].toFixed(3)})`
      : '';
    const verdict = q.note
      ? `no verdict: ${q.note}`
      : q.significant
        ? `a change the data show`
        : 'the interval includes 0: no evidence that it changes QWK';
    normText += `; QWK ${q.a.toFixed(3)} without and ${q.b.toFixed(3)} with it on the same ${q.patients} patients' slides${interval}: ${verdict}`;
  }
  findings.push(`${normText}.`);
  const outside = a.slides.filter((x) => x.scopeProblems.length);
  if (outside.length) {
    const reasons = [...new Set(outside.flatMap((x) => x.scopeProblems))];
    findings.push(
      `${outside.length} of ${a.slides.length} slides are outside the model's intended use (${reasons.slice(0, 3).join('; ')}${reasons.length > 3 ? '; ...' : ''}): the figures above are about data the model was not validated on.`,
    );
  }
  return findings;
}
