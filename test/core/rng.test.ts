import { describe, expect, it } from 'vitest';
import { createRng, shuffled } from '../../src/core/index.ts';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(sa);
  });

  it('forks independent streams that do not depend on how much the parent drew', () => {
    const a = createRng(7);
    const b = createRng(7);
    for (let i = 0; i < 100; i++) b.next();
    expect(a.fork('hed').next()).toBe(b.fork('hed').next());
    expect(a.fork('hed').next()).not.toBe(a.fork('blur').next());
  });

  it('draws uniform, integer and normal values with the right moments', () => {
    const r = createRng('moments');
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    const counts = new Array(6).fill(0);
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
      counts[r.int(6)]++;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.02);
    for (const c of counts) expect(Math.abs(c / n - 1 / 6)).toBeLessThan(0.005);
    for (let i = 0; i < 1000; i++) {
      const u = r.next();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
  });

  it('shuffles without touching the input', () => {
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const copy = items.slice();
    const out = shuffled(items, createRng(1));
    expect(items).toEqual(copy);
    expect([...out].sort()).toEqual(copy);
    expect(shuffled(items, createRng(1))).toEqual(out);
  });
});
