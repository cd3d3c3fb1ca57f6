import { describe, expect, it } from 'vitest';
import type { PredictionRow } from '../../src/eval/index.ts';
import { worstCases, worstCasesTable } from '../../src/report/index.ts';

function row(id: string, label: number | undefined, pred: number, pPred: number, oodFlag?: boolean): PredictionRow {
  const probs = [0, 0, 0, 0, 0, 0].map((_, c) => (c === pred ? pPred : (1 - pPred) / 5));
  return { slideId: id, patientId: `pt-${id}`, site: 'site-A', scanner: 'x', label, pred, probs, oodFlag, raters: {}, extra: {} };
}

// Ranked by hand: distance 3 (d), then distance 2 with P 0.9 (b) before P 0.5 (a), then distance 1 with
// equal P ordered by id (c before e); right (f) and unlabelled (g) slides are never worst cases.
const rows = [
  row('a', 0, 2, 0.5),
  row('b', 5, 3, 0.9, true),
  row('c', 1, 2, 0.6),
  row('d', 4, 1, 0.4),
  row('e', 3, 2, 0.6),
  row('f', 2, 2, 0.99),
  row('g', undefined, 5, 0.99),
];

describe('worst cases', () => {
  it('orders misgraded slides by grade distance, then confidence, then id', () => {
    expect(worstCases(rows).map((r) => r.slideId)).toEqual(['d', 'b', 'a', 'c', 'e']);
    expect(worstCases(rows, 2).map((r) => r.slideId)).toEqual(['d', 'b']);
    expect(worstCases([row('f', 2, 2, 0.9)])).toEqual([]);
  });

  it('does not reorder its input', () => {
    const before = rows.map((r) => r.slideId);
    worstCases(rows);
    expect(rows.map((r) => r.slideId)).toEqual(before);
  });

  it('links each slide a viewer holds and says which it does not', () => {
    const t = worstCasesTable(
      rows,
      (c) => `ISUP ${c}`,
      (id) => (id === 'b' ? `../viewer/index.html#slide=${id}` : undefined),
      3,
    );
    expect(t.caption).toMatch(/^Worst cases: 3 of 5 misgraded slides/);
    expect(t.rows[1]).toEqual(['b', 'pt-b', 'site-A', 'ISUP 5', 'ISUP 3', '2', '0.900', 'yes', 'open']);
    expect(t.rows[0].at(-1)).toBe('not in the viewer');
    expect(t.links).toEqual([undefined, '../viewer/index.html#slide=b', undefined]);
    const bare = worstCasesTable(rows, (c) => `ISUP ${c}`);
    expect(bare.header).not.toContain('viewer');
    expect(bare.links).toBeUndefined();
    expect(bare.rows[0]).toHaveLength(bare.header.length);
  });
});
