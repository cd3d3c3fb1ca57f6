import type { MrmcFile } from '../eval/index.ts';
import { section, type ReportSection } from './document.ts';
import type { ReportInputs } from './inputs.ts';

const FOM_NAMES = { auc: 'AUC (Wilcoxon)', accuracy: 'accuracy', qwk: 'quadratic weighted kappa' } as const;

const ci = (x: { estimate: number; lower: number; upper: number }) =>
  `${x.estimate.toFixed(3)} (${x.lower.toFixed(3)} to ${x.upper.toFixed(3)})`;

/** The reader studies (gradelab mrmc): pathologists with and without the AI, as the claim generalises. */
export function readerStudySection(inp: ReportInputs): ReportSection | undefined {
  if (!inp.readerStudies.length) return undefined;
  const s = section('reader-study', 'Reader study (multi-reader multi-case)');
  s.text.push(
    "Readers rated the same cases under each modality (a fully crossed design). Obuchowski-Rockette analysis with jackknife covariances and Hillis' degrees of freedom; the random-readers, random-cases result is the one that generalises to other pathologists and other cases, the fixed-readers result to these readers only.",
  );
  for (const { m } of inp.readerStudies) s.tables.push(studyTable(m));
  for (const { m } of inp.readerStudies)
    for (const d of m.rrrc.differences)
      s.text.push(
        `${m.source}: ${d.a} minus ${d.b} ${FOM_NAMES[m.fom]} ${d.estimate.toFixed(3)}, 95% CI ${d.lower.toFixed(3)} to ${d.upper.toFixed(3)} (random readers and cases, df ${d.df?.toFixed(1)}, p = ${d.p.toFixed(4)}): ${d.lower > 0 || d.upper < 0 ? 'a difference is shown' : 'the interval includes 0: these data do not show a difference'}${m.readers.length < 4 ? `; with ${m.readers.length} readers the reader variance is poorly estimated` : ''}.`,
      );
  return s;
}

function studyTable(m: MrmcFile) {
  const fr = (a: string, b: string) => m.frrc.differences.find((d) => d.a === a && d.b === b)!;
  return {
    caption: `${m.source}: ${m.readers.length} readers, ${m.cases} cases, ${FOM_NAMES[m.fom]}; F(${m.rrrc.ndf}, ${m.rrrc.ddf.toFixed(2)}) = ${m.rrrc.F.toFixed(2)}, p = ${m.rrrc.p.toFixed(4)}`,
    header: ['', 'estimate (95% CI), random readers and cases', 'p', 'fixed readers (95% CI)', 'p'],
    rows: [
      ...m.modalities.map((mod, i) => [mod, ci(m.rrrc.single[i]), '', ci(m.frrc.single[i]), '']),
      ...m.rrrc.differences.map((d) => {
        const f = fr(d.a, d.b);
        return [`${d.a} - ${d.b}`, ci(d), d.p.toFixed(4), ci(f), f.p.toFixed(4)];
      }),
    ],
  };
}
