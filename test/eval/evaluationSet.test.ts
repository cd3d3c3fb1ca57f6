import { describe, expect, it } from 'vitest';
import { evaluatePredictions, evaluationSetText, parseExclusions } from '../../src/eval/index.ts';
import { simulatePredictions } from '../fixtures/simulatePredictions.ts';

describe('the evaluation set', () => {
  const rows = simulatePredictions(60, 4).map((r, i) => ({
    ...r,
    // Three anomalous slides graded exactly right (the demo's lymphoid "ISUP 1" counted correct), two OOD-flagged.
    extra: { ...r.extra, anomaly: i < 3 ? 'lymphoid' : '' },
    pred: i < 3 ? r.label! : r.pred,
    oodFlag: i === 10 || i === 11,
  }));
  const preds = { path: 'p.csv', k: 6, rows };

  it('leaves anomalous and OOD-flagged slides out of the headline and names them', () => {
    const r = evaluatePredictions(preds, { resamples: 50, seed: 1 });
    expect(r.n).toBe(55);
    expect(r.evaluationSet.slides).toHaveLength(55);
    expect(r.evaluationSet.slides).not.toContain(rows[0].slideId);
    expect(r.evaluationSet.excluded.map((e) => [e.slideId, e.reason])).toEqual([
      [rows[0].slideId, 'anomalous'],
      [rows[1].slideId, 'anomalous'],
      [rows[2].slideId, 'anomalous'],
      [rows[10].slideId, 'ood-flagged'],
      [rows[11].slideId, 'ood-flagged'],
    ]);
    const text = evaluationSetText(r).join('\n');
    expect(text).toMatch(/^Evaluation set: 55 slides from \d+ patients: every labelled slide except slides the reference marks anomalous/);
    expect(text).toMatch(/Left out, anomalous: 3 slides \([^)]*lymphoid[^)]*\); 3 of them graded as their label/);
    expect(text).toMatch(/Left out, ood-flagged: 2 slides/);
  });

  it('changes the headline as it should: the anomalous slides graded right no longer count as correct', () => {
    const all = evaluatePredictions(preds, { resamples: 50, seed: 1, exclude: [] });
    const scoped = evaluatePredictions(preds, { resamples: 50, seed: 1, exclude: ['anomalous'] });
    expect(all.n).toBe(60);
    expect(scoped.n).toBe(57);
    const correct = (xs: typeof rows) => xs.filter((r) => r.label === r.pred).length;
    expect(all.metrics.accuracy.value).toBeCloseTo(correct(rows) / 60, 12);
    expect(scoped.metrics.accuracy.value).toBeCloseTo((correct(rows) - 3) / 57, 12);
  });

  it('--exclude is checked', () => {
    expect(parseExclusions('anomalous')).toEqual(['anomalous']);
    expect(parseExclusions('none')).toEqual([]);
    expect(parseExclusions(undefined)).toEqual(['anomalous', 'ood-flagged']);
    expect(() => parseExclusions('anomalies')).toThrow(/--exclude: "anomalies" is not one of anomalous, ood-flagged \(or none\)/);
  });
});
