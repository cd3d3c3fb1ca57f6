import { fmtFixed as fixed, fmtInterval as ci, representationVerdict, type RepresentationFile } from '../eval/index.ts';
import { chartIf, section, type ReportSection } from './document.ts';
import type { ReportInputs } from './inputs.ts';

/** Representation robustness (gradelab robustness embeddings): does the embedding encode the site or scanner more than the biology? */
export function representationSection(inp: ReportInputs): ReportSection | undefined {
  if (!inp.representation.length) return undefined;
  const s = section('representation', 'Representation robustness');
  s.text.push(
    "How much the model's embedding encodes where a slide came from, as croma and PathoROB measure it: among each tile's nearest neighbours from other patients, the share that match its biology rather than its site or scanner (RI, MaRI), each tile's margin between its nearest biological match and its nearest same-site impostor (CRoMa), how well a linear probe names the site, and how much a biology probe loses when its training data confound biology with site (APD, nIPD). 95% CIs by patient bootstrap.",
  );
  for (const { dir, r } of inp.representation) {
    s.tables.push(table(r));
    s.text.push(`${r.label} against ${r.confounder} (${r.source}): ${representationVerdict(r)}`);
    chartIf(s, `CRoMa per sample: ${r.source}, ${r.label} against ${r.confounder}`, dir, 'croma.png');
    chartIf(s, `Probe sweep: ${r.source}, ${r.label} against ${r.confounder}`, dir, 'probe-sweep.png');
  }
  return s;
}

function table(r: RepresentationFile) {
  const n = r.neighbours;
  const sweep = 'skipped' in r.sweep ? undefined : r.sweep;
  return {
    caption: `${r.source}, ${r.label} against ${r.confounder}: ${r.samples} tiles of ${r.slides} slides, ${r.groups} ${r.group}s, ${r.dim} features`,
    header: ['metric', 'value (95% CI)'],
    rows: [
      [`RI (k = ${n.k})`, ci(n.ri)],
      [`MaRI (tau = ${n.tau.toFixed(4)})`, ci(n.mari)],
      ['support', fixed(n.support)],
      [`CRoMa median (m = ${n.m})`, ci(n.croma.median)],
      ['CRoMa LTM10', ci(n.croma.ltm10)],
      ['CRoMa F(0), confounder-dominant share', ci(n.croma.f0)],
      [`${r.confounder} decodability (chance ${r.decodability.chance.toFixed(3)})`, ci(r.decodability.balancedAccuracy)],
      ['APD', sweep ? fixed(sweep.apd) : `n/a: ${'skipped' in r.sweep ? r.sweep.skipped : ''}`],
      ['nIPD', sweep ? fixed(sweep.nipd) : 'n/a'],
    ],
  };
}
