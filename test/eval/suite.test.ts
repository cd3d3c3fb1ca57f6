import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shardUnits } from '../../src/data/index.ts';
import { loadSuite, parseCriterion, summariseSuite, suiteUnits, type UnitResult } from '../../src/eval/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();

function unit(condition: string, severity: number, qwk: number, acc: number, ood: number | null = null): UnitResult {
  return {
    condition,
    severity,
    slides: 100,
    qwk: { value: qwk, ci95: [qwk - 0.1, qwk + 0.05] },
    accuracy: { value: acc, ci95: [acc - 0.1, acc + 0.1] },
    ece: 0.05,
    oodFlagRate: ood,
    perSite: {},
    seconds: 1,
    perturbSeconds: 0.5,
    inferSeconds: 0.5,
  };
}

describe('suites', () => {
  it('parse criteria as written in the issue', () => {
    expect(parseCriterion('qwk_drop <= 0.05 for severity <= 3', 's')).toMatchObject({
      metric: 'qwk_drop',
      op: '<=',
      value: 0.05,
      severity: { op: '<=', value: 3 },
    });
    expect(parseCriterion('ece <= 0.1', 's')).toMatchObject({ metric: 'ece', value: 0.1 });
    expect(parseCriterion('ood_flag_rate <= 0.2 at severity <= 2', 's')).toMatchObject({ metric: 'ood_flag_rate', severity: { value: 2 } });
    expect(() => parseCriterion('kappa < 2', 'suite.yaml')).toThrow(/suite\.yaml: criterion "kappa < 2": unknown metric "kappa"/);
    expect(() => parseCriterion('qwk_drop about 0.1', 'suite.yaml')).toThrow(/is not "<metric> <op> <value>/);
  });

  it('the shipped suites load and every condition builds', () => {
    for (const f of ['clinical-scanners', 'stain-shift', 'artifacts']) {
      const { suite, criteria } = loadSuite(new URL(`../../experiments/suites/${f}.yaml`, import.meta.url).pathname);
      expect(suite.conditions.length).toBeGreaterThan(3);
      expect(criteria.length).toBeGreaterThan(1);
    }
  });

  it('bad suites are one clear error', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'name: x\nconditions:\n  - {name: blur, transform: {name: gaussian-blurr}, severities: [1]}\n');
    expect(() => loadSuite(join(dir, 'bad.yaml'))).toThrow(/bad\.yaml, condition blur: unknown transform "gaussian-blurr"/);
    writeFileSync(join(dir, 'bad2.yaml'), 'name: x\nconditions:\n  - {name: blur, transform: {name: gaussian-blur}, severities: [7]}\n');
    expect(() => loadSuite(join(dir, 'bad2.yaml'))).toThrow(/bad2\.yaml: conditions\.0\.severities\.0/);
  });

  it('judges criteria with evidence, computes ImageNet-C mCE against a baseline, and shards merge to the same summary', () => {
    writeFileSync(
      join(dir, 's.yaml'),
      'name: t\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [1, 2, 3]}\n  - {name: warm, transform: {name: scanner, profile: warm-bright}}\ncriteria:\n  - qwk_drop <= 0.05 for severity <= 2\n  - accuracy >= 0.5\n',
    );
    const { suite, criteria } = loadSuite(join(dir, 's.yaml'));
    const model = [
      unit('clean', 0, 0.9, 0.8),
      unit('jpeg', 1, 0.88, 0.78),
      unit('jpeg', 2, 0.86, 0.75),
      unit('jpeg', 3, 0.7, 0.6),
      unit('warm', 0, 0.89, 0.79),
    ];
    const base = [
      unit('clean', 0, 0.85, 0.7),
      unit('jpeg', 1, 0.8, 0.6),
      unit('jpeg', 2, 0.75, 0.55),
      unit('jpeg', 3, 0.6, 0.5),
      unit('warm', 0, 0.8, 0.65),
    ];
    const s = summariseSuite(suite, criteria, model, base);
    expect(s.criteria[0]).toMatchObject({ pass: true });
    expect(s.criteria[0].evidence).toMatch(/worst qwk_drop 0\.040 at jpeg severity 2/);
    expect(s.criteria[1].pass).toBe(true);
    // CE_jpeg = (0.22 + 0.25 + 0.40) / (0.40 + 0.45 + 0.50); relative = (0.02+0.05+0.20)/(0.10+0.15+0.20).
    expect(s.corruptionErrors[0].ce).toBeCloseTo(0.87 / 1.35, 10);
    expect(s.corruptionErrors[0].relativeCe).toBeCloseTo(0.27 / 0.45, 10);
    // The one-off scanner condition is reported beside (CE 0.21 / 0.35, relative 0.01 / 0.05) and never
    // averaged in: mCE is jpeg's alone, as ImageNet-C averages corruptions over severities only.
    expect(s.corruptionErrors[1]).toMatchObject({ condition: 'warm', oneOff: true });
    expect(s.corruptionErrors[1].ce).toBeCloseTo(0.21 / 0.35, 10);
    expect(s.corruptionErrors[1].relativeCe).toBeCloseTo(0.01 / 0.05, 10);
    expect(s.mCE).toBeCloseTo(0.87 / 1.35, 10);
    expect(s.relativeMCE).toBeCloseTo(0.27 / 0.45, 10);
    // A baseline whose error does not move under a corruption leaves its relative CE undefined (0 / 0).
    const flat = base.map((b) => (b.condition === 'jpeg' ? unit('jpeg', b.severity, 0.85, 0.7) : b));
    const f = summariseSuite(suite, criteria, model, flat);
    expect(f.relativeMCE).toBeNull();
    expect(f.relativeUndefined).toEqual(['jpeg']);
    expect(f.mCE).toBeCloseTo(0.87 / 0.9, 10);
    const units = [{ condition: 'clean', severity: 0 }, ...suiteUnits(suite)];
    const shard1 = shardUnits(units, { index: 1, count: 2 }).map((u) =>
      model.find((m) => m.condition === u.condition && m.severity === u.severity)!,
    );
    const shard2 = shardUnits(units, { index: 2, count: 2 }).map((u) =>
      model.find((m) => m.condition === u.condition && m.severity === u.severity)!,
    );
    expect(shard1.length + shard2.length).toBe(units.length);
    expect(summariseSuite(suite, criteria, [...shard2, ...shard1])).toEqual(summariseSuite(suite, criteria, model));
    expect(() => summariseSuite(suite, criteria, shard1)).toThrow(/missing/);
  });

  it('a baseline error that moves by floating-point noise only leaves relative CE undefined, not 10^14', () => {
    writeFileSync(join(dir, 'n.yaml'), 'name: n\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [1, 2]}\n');
    const { suite, criteria } = loadSuite(join(dir, 'n.yaml'));
    const ten = (u: UnitResult): UnitResult => ({ ...u, slides: 10 });
    const model = [unit('clean', 0, 0.9, 0.8), unit('jpeg', 1, 0.85, 0.7), unit('jpeg', 2, 0.8, 0.6)].map(ten);
    // Baseline accuracies 0.7, 0.7 + 1e-16 and 0.7 + 2.2e-16: a denominator of about 3e-16 (10 slides: a step is 0.1).
    const base = [unit('clean', 0, 0.85, 0.7), unit('jpeg', 1, 0.85, 0.7 + 1e-16), unit('jpeg', 2, 0.85, 0.7 + 2.2e-16)].map(ten);
    const s = summariseSuite(suite, criteria, model, base);
    expect(s.corruptionErrors[0].relativeCe).toBeNull();
    expect(s.relativeMCE).toBeNull();
    expect(s.relativeUndefined).toEqual(['jpeg']);
    // One slide's worth of change (0.1 on 10 slides) is a real change and is kept.
    const moved = [unit('clean', 0, 0.85, 0.7), unit('jpeg', 1, 0.85, 0.6), unit('jpeg', 2, 0.85, 0.7)].map(ten);
    expect(summariseSuite(suite, criteria, model, moved).relativeMCE).toBeCloseTo(0.3 / 0.1, 10);
  });

  it('drop criteria are not evaluable (and fail) for a model that grades every slide alike or is below the floor', () => {
    writeFileSync(
      join(dir, 'f.yaml'),
      'name: f\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [1]}\ncriteria:\n  - qwk_drop <= 0.05\n  - accuracy >= 0.1\n',
    );
    const { suite, criteria } = loadSuite(join(dir, 'f.yaml'));
    const constant = (u: UnitResult): UnitResult => ({
      ...u,
      slidePreds: Array.from({ length: 10 }, (_, i) => [`s${i}`, `p${i}`, i % 3, 2]),
    });
    const s = summariseSuite(suite, criteria, [constant(unit('clean', 0, 0, 0.3)), constant(unit('jpeg', 1, 0, 0.3))]);
    expect(s.criteria[0]).toMatchObject({ status: 'not-evaluable', pass: false });
    expect(s.criteria[0].evidence).toMatch(/predicts one grade for every clean slide/);
    // The absolute criterion is judged as usual.
    expect(s.criteria[1]).toMatchObject({ status: 'pass', pass: true });
    expect(s.passed).toBe(false);
    const weak = summariseSuite(suite, criteria, [unit('clean', 0, 0.3, 0.5), unit('jpeg', 1, 0.3, 0.5)]);
    expect(weak.criteria[0].evidence).toMatch(/clean QWK 0\.300 is below the suite's floor of 0\.4/);
    const good = summariseSuite(suite, criteria, [unit('clean', 0, 0.8, 0.7), unit('jpeg', 1, 0.78, 0.7)]);
    expect(good.criteria[0]).toMatchObject({ status: 'pass', pass: true });
  });
});
