import { describe, expect, it } from 'vitest';
import { gleasonFromAreas, type PatternAreas } from '../../src/core/index.ts';

const areas = (benign: number, g3: number, g4: number, g5: number): PatternAreas => ({ benign, g3, g4, g5 });

describe('Gleason score and grade group from pattern areas (ISUP 2014, biopsy rules)', () => {
  // Hand-made tables: [benign, 3, 4, 5] areas -> primary + secondary, grade group.
  const table: [string, PatternAreas, number, number, number][] = [
    ['no cancer', areas(100, 0, 0, 0), 0, 0, 0],
    ['one pattern is doubled', areas(90, 10, 0, 0), 3, 3, 1],
    ['most extensive first', areas(50, 35, 15, 0), 3, 4, 2],
    ['4 over 3', areas(0, 30, 70, 0), 4, 3, 3],
    ['a higher pattern counts in any amount', areas(0, 97, 3, 0), 3, 4, 2],
    ['a lower pattern under 5% does not', areas(0, 3, 97, 0), 4, 4, 4],
    ['a lower pattern from 5% does', areas(0, 6, 94, 0), 4, 3, 3],
    ['tertiary 5 with 3+4 is 3+5', areas(0, 60, 35, 5), 3, 5, 4],
    ['tertiary 5 with 4+3 is 4+5', areas(0, 35, 60, 5), 4, 5, 5],
    ['5 over a lower 3', areas(10, 40, 0, 60), 5, 3, 4],
    ['pattern 5 alone', areas(0, 0, 0, 100), 5, 5, 5],
    ['a tie goes to the higher pattern', areas(0, 50, 50, 0), 4, 3, 3],
    ['cancer under 1% of the tissue is benign', areas(1000, 0, 5, 0), 0, 0, 0],
    ['a pattern under 1% of the cancer is noise', areas(0, 100, 0, 0.5), 3, 3, 1],
  ];
  it.each(table)('%s', (_, a, primary, secondary, isup) => {
    const g = gleasonFromAreas(a);
    expect([g.primary, g.secondary, g.isup]).toEqual([primary, secondary, isup]);
  });

  it("the thresholds are the caller's: a stricter noise floor drops a small higher pattern", () => {
    const a = areas(0, 97, 3, 0);
    expect(gleasonFromAreas(a).isup).toBe(2);
    expect(gleasonFromAreas(a, { minCancerShare: 0.01, minPatternShare: 0.05, lowerSecondaryShare: 0.05 }).isup).toBe(1);
  });

  it('shares are of the cancer; areas must be finite and not negative', () => {
    expect(gleasonFromAreas(areas(50, 25, 75, 0)).shares).toEqual({ g3: 0.25, g4: 0.75, g5: 0 });
    expect(() => gleasonFromAreas(areas(1, -1, 0, 0))).toThrow(/g3 must be a finite number >= 0/);
    expect(() => gleasonFromAreas(areas(1, Number.NaN, 0, 0))).toThrow(/g3/);
  });
});
