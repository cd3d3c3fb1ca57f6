import { describe, expect, it } from 'vitest';
import { isupFromGleason, nottinghamGrade, parseGleasonScore } from '../../src/core/index.ts';

describe('ISUP grade group (Epstein 2016)', () => {
  it.each([
    [0, 0, 0],
    [3, 3, 1],
    [3, 4, 2],
    [4, 3, 3],
    [4, 4, 4],
    [3, 5, 4],
    [5, 3, 4],
    [4, 5, 5],
    [5, 4, 5],
    [5, 5, 5],
  ])('%i+%i -> %i', (p, s, g) => expect(isupFromGleason(p, s)).toBe(g));

  it('rejects patterns that are not 3-5', () => {
    expect(() => isupFromGleason(2, 3)).toThrow(/3, 4 or 5/);
  });

  it('parses PANDA gleason_score spellings', () => {
    expect(parseGleasonScore('negative')).toEqual({ primary: 0, secondary: 0 });
    expect(parseGleasonScore('0+0')).toEqual({ primary: 0, secondary: 0 });
    expect(parseGleasonScore('4+3')).toEqual({ primary: 4, secondary: 3 });
    expect(parseGleasonScore('four')).toBeUndefined();
  });
});

describe('Nottingham grade', () => {
  it('maps component sums 3-5, 6-7, 8-9 to grades 1, 2, 3', () => {
    expect(nottinghamGrade(1, 1, 1)).toBe(1);
    expect(nottinghamGrade(2, 2, 1)).toBe(1);
    expect(nottinghamGrade(2, 2, 2)).toBe(2);
    expect(nottinghamGrade(3, 3, 1)).toBe(2);
    expect(nottinghamGrade(3, 3, 2)).toBe(3);
    expect(nottinghamGrade(3, 3, 3)).toBe(3);
    expect(() => nottinghamGrade(0, 1, 1)).toThrow();
  });
});
