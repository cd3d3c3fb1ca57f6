import type { PredictionRow } from '../eval/index.ts';
import type { ReportSection } from './document.ts';

/**
 * The cases a reviewer should look at first: labelled slides the model graded wrongly, the largest
 * grade distance first and, at equal distance, the most confident error first (a confident miss is
 * the one a workflow would not catch by referral). Ties end on the slide id, so the order is stable.
 */
export function worstCases(rows: readonly PredictionRow[], limit = 10): PredictionRow[] {
  const wrong = misgraded(rows);
  const distance = (r: PredictionRow) => Math.abs(r.pred - r.label!);
  return [...wrong]
    .sort(
      (a, b) =>
        distance(b) - distance(a) || b.probs[b.pred] - a.probs[a.pred] || (a.slideId < b.slideId ? -1 : a.slideId > b.slideId ? 1 : 0),
    )
    .slice(0, limit);
}

/** Labelled slides whose predicted grade is not the reference. */
function misgraded(rows: readonly PredictionRow[]): PredictionRow[] {
  return rows.filter((r) => r.label !== undefined && r.label !== r.pred);
}

/** The worst cases as a report table; `link`, when given, points each slide into a viewer that holds it. */
export function worstCasesTable(
  rows: readonly PredictionRow[],
  name: (grade: number) => string,
  link?: (slideId: string) => string | undefined,
  limit = 10,
): ReportSection['tables'][number] {
  const worst = worstCases(rows, limit);
  return {
    caption: `Worst cases: ${worst.length} of ${misgraded(rows).length} misgraded slides, largest grade distance first, then the most confident`,
    header: ['slide', 'patient', 'site', 'reference', 'predicted', 'distance', 'P(predicted)', 'OOD flag', ...(link ? ['viewer'] : [])],
    rows: worst.map((r) => [
      r.slideId,
      r.patientId,
      r.site,
      name(r.label!),
      name(r.pred),
      String(Math.abs(r.pred - r.label!)),
      r.probs[r.pred].toFixed(3),
      r.oodFlag === undefined ? '-' : r.oodFlag ? 'yes' : 'no',
      ...(link ? [link(r.slideId) ? 'open' : 'not in the viewer'] : []),
    ]),
    links: link && worst.map((r) => link(r.slideId)),
  };
}
