import type { PrecisionFile } from '../eval/index.ts';
import { section, type ReportSection } from './document.ts';
import { est } from './evidence.ts';
import type { ReportInputs } from './inputs.ts';

/** Analytical precision: the same slides re-acquired, graded again (repeatability, reproducibility). */
export function precisionSection(inp: ReportInputs): ReportSection {
  const s = section('precision', 'Precision (repeatability and reproducibility)');
  if (!inp.precision.length) {
    s.missing.push('precision study (`gradelab precision --rescans K --scanner S` and `--scanners S1,S2,...`)');
    return s;
  }
  s.text.push(
    'The same slides acquired again through the scanner simulator and graded again by the same model and pooling rule: rescans through one scanner profile with fresh acquisition noise (repeatability), and one scan through each of several profiles (reproducibility). Agreement of the slide grades, with patient-bootstrap 95% CIs.',
  );
  for (const { p } of inp.precision) {
    s.tables.push(table(p));
    const flips = p.flips.filter((f) => (f.rate.value ?? 0) > 0);
    s.text.push(
      `${p.kind === 'repeatability' ? 'Repeatability' : 'Reproducibility'} (${p.acquisitions.join(', ')}; ${p.slides} slides, ${p.patients} patients): ${est(p.identical)} of slides graded identically${flips.length ? `; grades cross ${flips.map((f) => `${f.cutoff} for ${est(f.rate)}`).join(', ')} of slides` : '; no slide crosses a clinical cut-off'}.`,
    );
  }
  return s;
}

function table(p: PrecisionFile) {
  return {
    caption: `${p.kind}: ${p.acquisitions.join(', ')} (${p.slides} slides, ${p.tiles} tiles)`,
    header: ['statistic', 'value (95% CI)'],
    rows: [
      ['graded identically under every acquisition', est(p.identical)],
      ["Fleiss' kappa", est(p.fleiss)],
      ['mean pairwise kappa', est(p.pairwiseKappa)],
      ['mean absolute grade difference', est(p.meanAbsoluteDifference)],
      ...p.flips.map((f) => [`flips across ${f.cutoff}`, est(f.rate)]),
    ],
  };
}
