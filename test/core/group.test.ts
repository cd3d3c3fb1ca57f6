import { describe, expect, it } from 'vitest';
import { groupBy } from '../../src/core/index.ts';
import { spreadTilesPerSlide } from '../../src/data/index.ts';

describe('groupBy', () => {
  it('keeps first-seen key order and item order, maps values, and leaves the input alone', () => {
    const items = ['b1', 'a1', 'b2', 'c1', 'a2'];
    const copy = items.slice();
    const g = groupBy(
      items,
      (s) => s[0],
      (s, i) => `${s}@${i}`,
    );
    expect([...g.entries()]).toEqual([
      ['b', ['b1@0', 'b2@2']],
      ['a', ['a1@1', 'a2@4']],
      ['c', ['c1@3']],
    ]);
    expect(items).toEqual(copy);
    expect(groupBy([] as string[], (s) => s).size).toBe(0);
  });

  it('spreads up to n tiles per slide evenly over each slide', () => {
    const tiles = [...Array.from({ length: 10 }, (_, i) => ({ slideId: 'a', i })), { slideId: 'b', i: 0 }];
    expect(spreadTilesPerSlide(tiles, 4).map((t) => `${t.slideId}${t.i}`)).toEqual(['a0', 'a2', 'a5', 'a7', 'b0']);
  });
});
