import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/index.ts';
import {
  evaluatePredictions,
  metricsJson,
  readPredictions,
  writeMetricCharts,
  writeMetricsFiles,
  writePredictions,
} from '../../src/eval/index.ts';
import { simulatePredictions } from '../fixtures/simulatePredictions.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();

describe('predictions files', () => {
  it('round-trips through CSV', async () => {
    const rows = simulatePredictions(30, 2);
    const p = join(dir, 'pred.csv');
    await writePredictions(p, rows, 6);
    const back = readPredictions(p);
    expect(back.k).toBe(6);
    expect(back.rows.map((r) => [r.slideId, r.patientId, r.label, r.pred, r.raters.a])).toEqual(
      rows.map((r) => [r.slideId, r.patientId, r.label, r.pred, r.raters.a]),
    );
    for (let i = 0; i < rows.length; i++) for (let c = 0; c < 6; c++) expect(back.rows[i].probs[c]).toBeCloseTo(rows[i].probs[c], 5);
  });

  const head = 'slide_id,patient_id,site,scanner,label,pred,prob_0,prob_1,prob_2';
  it.each([
    ['empty', '', /empty file/],
    ['missing', 'slide_id,label,pred,prob_0,prob_1\ns,0,0,0.5,0.5\n', /missing columns patient_id, site, scanner/],
    ['range', `${head}\ns1,p1,A,x,3,0,0.2,0.3,0.5\n`, /row 2: label "3" is not a class index 0-2/],
    ['sum', `${head}\ns1,p1,A,x,1,0,0.2,0.3,0.4\n`, /row 2: probabilities sum to 0\.9000, not 1/],
    ['prob', `${head}\ns1,p1,A,x,1,0,abc,0.3,0.4\n`, /row 2: prob_0 "abc" is not a probability/],
    ['gap', 'slide_id,patient_id,site,scanner,label,pred,prob_0,prob_2\ns,p,A,x,0,0,0.5,0.5\n', /without gaps/],
    ['noprob', 'slide_id,patient_id,site,scanner,label,pred\ns,p,A,x,0,0\n', /needs probability columns/],
  ])('%s: one clear error naming the file', (name, text, pattern) => {
    const p = join(dir, `${name}.csv`);
    writeFileSync(p, text);
    expect(() => readPredictions(p)).toThrow(InputError);
    expect(() => readPredictions(p)).toThrow(pattern);
  });
});

describe('evaluatePredictions', () => {
  it('reports every metric with a CI, subgroups, agreement and referral; seeded', async () => {
    const preds = { path: 'sim', k: 6, rows: simulatePredictions(180, 5) };
    const r = evaluatePredictions(preds, { resamples: 200, seed: 3 });
    expect(r.metrics.qwk.value).toBeGreaterThan(0.8);
    expect(r.metrics.qwk.ci95[0]).toBeLessThan(r.metrics.qwk.value);
    expect(r.metrics.qwk.ci95[1]).toBeGreaterThan(r.metrics.qwk.value);
    expect(Object.keys(r.subgroups.site)).toEqual(['A', 'B', 'C']);
    // The simulated model is worse at site C.
    expect(r.subgroups.site.C.qwk!.value).toBeLessThan(r.subgroups.site.A.qwk!.value);
    // Kappa within one reference grade measures nothing: per grade, accuracy and the mean grade error.
    expect(
      Object.values(r.subgroups.grade).every(
        (g) => g.qwk === undefined && Number.isFinite(g.accuracy.value) && Number.isFinite(g.mae.value),
      ),
    ).toBe(true);
    expect(r.cutoffs.map((c) => c.name)).toEqual(['cancer (ISUP >= 1)', 'ISUP >= 2', 'ISUP >= 3']);
    expect(r.agreement!.raters).toEqual(['a', 'b', 'c']);
    expect(r.referral.curve[0].coverage).toBe(1);
    expect(evaluatePredictions(preds, { resamples: 200, seed: 3 })).toEqual(r);
    const json = metricsJson(r) as any;
    for (const key of ['qwk', 'kappa', 'accuracy', 'balanced_accuracy', 'auroc', 'ece']) {
      expect(json[key].value, key).toBeTypeOf('number');
      expect(json[key].ci95, key).toHaveLength(2);
    }
    expect(json.bootstrap).toMatchObject({ unit: 'patient', resamples: 200, seed: 3 });
    expect(json.bootstrap.interval).toMatch(/BCa.*Wilson.*Newcombe/);
    expect(json.accuracy.method).toBe('wilson');
    expect(json.cutoffs[0].auroc.method).toBe('newcombe-score');
    expect(json.qwk.method).toBe('bca');
    await writeMetricsFiles(dir, r, { predictions: join(dir, 'sim.csv') });
    const written = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    expect(written.qwk.value).toBeCloseTo(r.metrics.qwk.value, 10);
    expect(written.source).toEqual({ predictions: 'sim.csv' });
    expect(readFileSync(join(dir, 'metrics.md'), 'utf8')).toMatch(/\| quadratic weighted kappa \| 0\.\d{3} \(0\.\d{3}-0\.\d{3}\) \|/);
    const files = await writeMetricCharts(dir, r);
    for (const f of files) expect(existsSync(f)).toBe(true);
    expect(readFileSync(join(dir, 'confusion.svg'), 'utf8')).toMatch(/<svg[^>]*>.*ISUP 5/s);
  });
});
