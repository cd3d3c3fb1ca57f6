import { describe, expect, it } from 'vitest';
import {
  createRng,
  DEFAULT_PATTERN_RULE,
  gleasonFromAreas,
  headProbabilities,
  patternAreasOf,
  patternGradeProbabilities,
  type PatternAreas,
} from '../../src/core/index.ts';

const areas = (benign: number, g3: number, g4: number, g5: number): PatternAreas => ({ benign, g3, g4, g5 });
const grading = (softness: number) => ({ rule: DEFAULT_PATTERN_RULE, softness });

describe('grade-group probabilities from pattern areas', () => {
  it('a benign-heavy slide by hand: P(cancer) = 1 / (1 + 0.01 / 0.1) at softness 1, all of it 3+3', () => {
    const { probs, grade } = patternGradeProbabilities(areas(0.9, 0.1, 0, 0), grading(1));
    expect(grade).toBe(1);
    expect(probs[0]).toBeCloseTo(1 - 1 / 1.1, 12);
    expect(probs[1]).toBeCloseTo(1 / 1.1, 12);
    expect(probs.slice(2).every((p) => p === 0)).toBe(true);
  });

  it('3 with 10% of 4 by hand: each decision soft and independent (products worked out by hand)', () => {
    // P(cancer) = 1/(1+0.01); 3 present 1/(1+0.01/0.9); 4 present 1/(1+0.01/0.1); 5 absent.
    const pc = 1 / 1.01;
    const p3 = 1 / (1 + 0.01 / 0.9);
    const p4 = 1 / 1.1;
    const { probs, grade } = patternGradeProbabilities(areas(0, 0.9, 0.1, 0), grading(1));
    expect(grade).toBe(2);
    expect(probs[2]).toBeCloseTo(pc * p3 * p4, 12); // 3 and 4 present: 3+4
    expect(probs[4]).toBeCloseTo(pc * (1 - p3) * p4, 12); // only 4 present: 4+4
    expect(probs[1]).toBeCloseTo(pc * (1 - p4), 12); // 4 absent: 3+3 whether or not 3 passes its floor
    expect(probs[0]).toBeCloseTo(1 - pc, 12);
    expect(probs[2]).toBeCloseTo(0.8901989100008902, 12);
  });

  it('a lower secondary is soft too: 4 with 5% of 3 is 4+3 or 4+4 around the 5% rule', () => {
    const { probs, grade } = patternGradeProbabilities(areas(0, 0.05, 0.95, 0), grading(0.5));
    expect(grade).toBe(3); // exactly at 5%: the hard rule counts it
    // At the floor the lower-secondary decision is a coin: 4+3 and 4+4 share what 3's presence leaves.
    const p3present = 1 / (1 + (0.01 / 0.05) ** 2);
    const p4present = 1 / (1 + (0.01 / 0.95) ** 2);
    const pc = 1 / (1 + (0.01 / 1) ** 2);
    expect(probs[3]).toBeCloseTo(pc * p4present * p3present * 0.5, 12);
  });

  it('as softness goes to 0 the probabilities become the hard rule on random areas (every grade is met)', () => {
    const rng = createRng('pattern-grade');
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const a = areas(rng.next() * 10, rng.next() ** 3, rng.next() ** 3, rng.next() ** 4);
      const hard = gleasonFromAreas(a, DEFAULT_PATTERN_RULE).isup;
      const { probs, grade } = patternGradeProbabilities(a, grading(1e-4));
      expect(grade).toBe(hard);
      expect(probs[hard]).toBeGreaterThan(0.999);
      expect(probs.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
      seen.add(hard);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('the probability of cancer rises with the cancer area, and the grade stays the rule', () => {
    let last = -1;
    for (const cancer of [0, 0.001, 0.005, 0.01, 0.05, 0.2, 0.6]) {
      const { probs } = patternGradeProbabilities(areas(1 - cancer, cancer, 0, 0), grading(0.5));
      expect(1 - probs[0]).toBeGreaterThan(last);
      last = 1 - probs[0];
    }
  });

  it("a pattern head's tile probabilities sit in the ISUP classes and pool back into areas", () => {
    // softmax([0, ln 2, 0, ln 4]) = [1, 2, 1, 4] / 8, into classes 0, 1, 4, 5.
    const logits = Float32Array.from([0, Math.log(2), 0, Math.log(4), 0, 0, 0, 0]);
    const p = headProbabilities(logits, 2, 'patterns', 6);
    expect(Array.from(p.subarray(0, 6))).toEqual([0.125, 0.25, 0, 0, 0.125, 0.5].map((v) => Math.fround(v)));
    expect(patternAreasOf(p.subarray(0, 6))).toEqual({ benign: 0.125, g3: 0.25, g4: 0.125, g5: 0.5 });
    expect(Array.from(p.subarray(6))).toEqual([0.25, 0.25, 0, 0, 0.25, 0.25]);
  });
});
