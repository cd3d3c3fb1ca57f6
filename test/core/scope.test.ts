import { describe, expect, it } from 'vitest';
import { scopeOf, scopeProblems } from '../../src/core/index.ts';

describe('intended use: the acquisition a model was trained on', () => {
  it('records the sorted distinct scanners and sites of its tiles', () => {
    const tiles = [
      { scanner: 'warm', site: 'B' },
      { scanner: 'cool', site: 'A' },
      { scanner: 'warm', site: 'A' },
    ];
    expect(scopeOf(tiles)).toEqual({ scanners: ['cool', 'warm'], sites: ['A', 'B'] });
  });

  it('names every reason a slide is outside it, and none for a slide inside', () => {
    const meta = { scope: { scanners: ['cool', 'warm'], sites: ['A'] } };
    expect(scopeProblems(meta, { scanner: 'warm', oodFlag: false })).toEqual([]);
    expect(scopeProblems(meta, { scanner: 'yellow', oodFlag: true })).toEqual([
      'scanner "yellow" is not one the model was trained on (cool, warm)',
      'flagged out of distribution',
    ]);
    // Native resolution: within 1.25x of the training slides' range is in; a 40x scan against 20x is out.
    const mpp = { scope: { scanners: ['cool'], sites: ['A'], slideMpp: [0.48, 0.52] as [number, number] } };
    expect(scopeProblems(mpp, { scanner: 'cool', slideMpp: 0.6 })).toEqual([]);
    expect(scopeProblems(mpp, { scanner: 'cool', slideMpp: 0.25 })).toEqual([
      "scanned at 0.25 um/px; the model's training slides were at 0.48-0.52 um/px",
    ]);
    expect(scopeProblems(mpp, { scanner: 'cool' })).toEqual([]);
    // A model without a recorded scope checks the OOD flag only.
    expect(scopeProblems({}, { scanner: 'yellow', oodFlag: null })).toEqual([]);
  });
});
