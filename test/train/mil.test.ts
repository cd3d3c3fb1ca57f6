import { beforeAll, describe, expect, it } from 'vitest';
import { AttentionMil, type Bag, bagsOf, loadMil, saveMil, selectBackend } from '../../src/train/index.ts';
import { createRng } from '../../src/core/index.ts';
import { writeModelMeta } from '../../src/core/index.ts';
import { modelMeta, tempDir } from '../helpers.ts';

const d = 6;

/** Classic MIL task: a bag is positive when one of its instances carries the marker feature 0 = +3. */
function bags(count: number, seed: string): Bag[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, b) => {
    const n = 8;
    const f = Float32Array.from({ length: n * d }, () => rng.normal() * 0.5);
    const label = b % 2;
    if (label) f[(b % n) * d] = 3;
    return { slideId: `s${b}`, label, features: f, n };
  });
}

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('attention MIL', () => {
  it('gives attention summing to one and is invariant to the order of tiles in a bag', () => {
    const mil = new AttentionMil(d, 3, 8, 4);
    const [bag] = bags(1, 'order');
    const p = mil.predict(bag);
    expect(p.attention.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const rev = new Float32Array(bag.features.length);
    for (let i = 0; i < bag.n; i++) rev.set(bag.features.subarray(i * d, (i + 1) * d), (bag.n - 1 - i) * d);
    const q = mil.predict({ ...bag, features: rev });
    q.probs.forEach((v, i) => expect(v).toBeCloseTo(p.probs[i], 5));
    expect(q.attention[bag.n - 1]).toBeCloseTo(p.attention[0], 5);
    mil.dispose();
  });

  it('learns a bag label carried by one tile, attends to that tile, and is seeded', () => {
    const train = bags(40, 'train');
    const copy = train.map((b) => Float32Array.from(b.features));
    const a = new AttentionMil(d, 2, 8, 7);
    a.fit(train, { epochs: 30, lr: 0.01, seed: 2 });
    train.forEach((b, i) => expect(b.features).toEqual(copy[i]));
    const test = bags(20, 'test');
    let correct = 0;
    let attended = 0;
    for (const bag of test) {
      const { probs, attention } = a.predict(bag);
      if ((probs[1] > probs[0] ? 1 : 0) === bag.label) correct++;
      const top = attention.indexOf(Math.max(...attention));
      if (bag.label && top === Number(bag.slideId.slice(1)) % bag.n) attended++;
    }
    expect(correct).toBeGreaterThanOrEqual(18);
    expect(attended).toBeGreaterThanOrEqual(8);
    const b = new AttentionMil(d, 2, 8, 7);
    b.fit(train, { epochs: 30, lr: 0.01, seed: 2 });
    expect(b.weights(30, 7)).toEqual(a.weights(30, 7));
    a.dispose();
    b.dispose();
  });

  it('round-trips through mil.json and groups tiles into bags by slide', async () => {
    const dir = tempDir();
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'c'.repeat(64), featureDim: d }));
    const mil = new AttentionMil(d, 3, 8, 1);
    await saveMil(dir, mil, 5, 1);
    const back = loadMil(dir);
    const [bag] = bags(1, 'rt');
    expect(back.predict(bag).probs).toEqual(mil.predict(bag).probs);
    // Retrained into the same folder: the head belongs to the old weights and is refused.
    await writeModelMeta(dir, modelMeta({ weightsSha256: 'e'.repeat(64), featureDim: d }));
    expect(() => loadMil(dir)).toThrow(/mil\.json was fitted on other weights .*refit with `gradelab mil fit/);
    expect(() => loadMil(tempDir())).toThrow(/no attention-MIL head/);
    const f = Float32Array.from({ length: 3 * 2 }, (_, i) => i);
    const grouped = bagsOf(
      [
        { slideId: 'a', grade: 1 },
        { slideId: 'b', grade: 2 },
        { slideId: 'a', grade: 1 },
      ],
      f,
      2,
      (g) => g,
    );
    expect(grouped.map((g) => [g.slideId, g.n, g.label, Array.from(g.features)])).toEqual([
      ['a', 2, 1, [0, 1, 4, 5]],
      ['b', 1, 2, [2, 3]],
    ]);
  });
});
