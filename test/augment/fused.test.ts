import { describe, expect, it } from 'vitest';
import { buildPipeline, flipHorizontal, flipVertical, rotate90, scaleStains, transformFromSpec } from '../../src/augment/index.ts';
import { createRng, type RgbImage } from '../../src/core/index.ts';

/** A w x h image whose pixel (x, y) has all three channels set to its label. */
function labelled(w: number, h: number, labels: number[]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  labels.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
  return { width: w, height: h, data };
}
const labels = (img: RgbImage) => Array.from({ length: img.width * img.height }, (_, i) => img.data[i * 3]);

function randomTile(w: number, h: number, seed: string): RgbImage {
  const rng = createRng(seed);
  const data = new Uint8Array(w * h * 3);
  // Tissue-like colours with a band of glass and a few pure black and white pixels.
  for (let i = 0; i < w * h; i++) {
    const glass = i % w < w / 4;
    for (let c = 0; c < 3; c++) data[i * 3 + c] = glass ? 235 + rng.int(21) : 40 + rng.int(200);
    if (i % 97 === 0) data.fill(0, i * 3, i * 3 + 3);
  }
  return { width: w, height: h, data };
}

describe('dihedral ops (hand-checked on a 3 x 2 image: a b c / d e f)', () => {
  const img = labelled(3, 2, [1, 2, 3, 4, 5, 6]);
  it('flips', () => {
    expect(labels(flipHorizontal(img))).toEqual([3, 2, 1, 6, 5, 4]);
    expect(labels(flipVertical(img))).toEqual([4, 5, 6, 1, 2, 3]);
  });
  it('rotations: counter-clockwise for k = 1, clockwise for k = 3', () => {
    const ccw = rotate90(img, 1);
    expect([ccw.width, ccw.height]).toEqual([2, 3]);
    expect(labels(ccw)).toEqual([3, 6, 2, 5, 1, 4]);
    expect(labels(rotate90(img, 3))).toEqual([4, 1, 5, 2, 6, 3]);
    expect(labels(rotate90(img, 2))).toEqual([6, 5, 4, 3, 2, 1]);
    expect(labels(rotate90(img, 4))).toEqual([1, 2, 3, 4, 5, 6]);
  });
  it('a fused chain equals the steps one by one (non-square, every rotation)', async () => {
    const tile = randomTile(7, 4, 'geo');
    for (let k = 0; k < 4; k++) {
      const spec = [{ name: 'vflip' }, { name: 'hflip' }, { name: 'rot90' }, { name: 'vflip' }];
      const seed = `k${k}`;
      const fused = await buildPipeline(spec).apply(tile, createRng(seed));
      let seq = tile;
      for (const [i, s] of spec.entries()) seq = await transformFromSpec(s).apply(seq, createRng(seed).fork(`${i}:${s.name}`).fork(s.name));
      expect([fused.width, fused.height]).toEqual([seq.width, seq.height]);
      expect(Buffer.from(fused.data).equals(Buffer.from(seq.data))).toBe(true);
    }
  });
});

/**
 * Independent per-pixel references, from the formulas and in double precision: no lookup tables, no
 * fused affine maps, one step after another. The RNG draws follow each transform's documented order.
 */
const RUIFROK = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
].map((v) => v.map((x) => x / Math.hypot(...v)));
const od = (v: number) => -Math.log10(Math.max(v, 1) / 255);
const weight = (r: number, g: number, b: number) =>
  r === 0 && g === 0 && b === 0 ? 0 : Math.min(1, Math.max(0, (od(r) + od(g) + od(b) - 0.05) / 0.15));
const clamp = (v: number) => Math.min(255, Math.max(0, v));

function solve3(m: number[][], y: number[]): number[] {
  // Cramer's rule for c M = y (c a row vector): c = y M^-1.
  const det = (a: number[][]) =>
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
    a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
    a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const mt = [0, 1, 2].map((c) => [0, 1, 2].map((r) => m[r][c]));
  const d = det(mt);
  return [0, 1, 2].map((k) => det(mt.map((row, i) => row.map((v, j) => (j === k ? y[i] : v)))) / d);
}

type RefStep = (r: number, g: number, b: number) => number[];
/** rgb: the edited value blended with the original by tissue weight; od: the edit of optical density scaled by it. */
const refSteps: Record<
  string,
  (spec: Record<string, unknown>, rng: ReturnType<typeof createRng>) => { fn: RefStep; protect: boolean; blend?: 'rgb' | 'od' }
> = {
  brightness: (s, rng) => {
    const delta = rng.uniform(-(s.delta as number), s.delta as number);
    return { fn: (...px) => px.map((v) => clamp(Math.round(v + 255 * delta))), protect: s.protectBackground !== false };
  },
  contrast: (s, rng) => {
    const f = rng.uniform(1 - ((s.factor as number) ?? 0.2), 1 + ((s.factor as number) ?? 0.2));
    return { fn: (...px) => px.map((v) => clamp(Math.round(128 + (v - 128) * f))), protect: s.protectBackground !== false };
  },
  gamma: (s, rng) => {
    const g = rng.uniform(1 - (s.range as number), 1 + (s.range as number));
    return { fn: (...px) => px.map((v) => clamp(Math.round(255 * (v / 255) ** g))), protect: s.protectBackground !== false };
  },
  'hed-jitter': (s, rng) => {
    const sigma = (s.sigma as number) ?? ({ light: 0.05, strong: 0.2 } as Record<string, number>)[s.preset as string];
    const alpha = [0, 1, 2].map(() => rng.uniform(1 - sigma, 1 + sigma));
    const beta = [0, 1, 2].map(() => rng.uniform(-sigma, sigma));
    // Returns the new optical density: concentrations c = OD M^-1 scaled and shifted, back through M.
    return {
      fn: (...px) => {
        const c = solve3(RUIFROK, px.map(od)).map((v, k) => alpha[k] * v + beta[k]);
        return [0, 1, 2].map((ch) => c[0] * RUIFROK[0][ch] + c[1] * RUIFROK[1][ch] + c[2] * RUIFROK[2][ch]);
      },
      protect: true,
      blend: 'od',
    };
  },
};

/** The reference pipeline: each step over every pixel, blended by tissue weight where it protects glass. */
function reference(img: RgbImage, spec: Record<string, unknown>[], seed: string, first = 0): number[] {
  let px = Array.from(img.data);
  spec.forEach((step, j) => {
    const i = first + j;
    const rng = createRng(seed)
      .fork(`${i}:${step.name}`)
      .fork(step.name as string);
    const { fn, protect, blend } = refSteps[step.name as string](step, rng);
    const next: number[] = [];
    for (let p = 0; p < px.length; p += 3) {
      const [r, g, b] = px.slice(p, p + 3);
      const w = protect ? weight(r, g, b) : 1;
      const t = fn(r, g, b);
      for (let c = 0; c < 3; c++) {
        if (blend === 'od') next.push(w === 0 ? px[p + c] : Math.round(clamp(255 * 10 ** -(od(px[p + c]) + w * (t[c] - od(px[p + c]))))));
        else next.push(Math.round(px[p + c] + w * (t[c] - px[p + c])));
      }
    }
    px = next;
  });
  return px;
}

describe('fused pixel ops against independent per-pixel references', () => {
  const specs = [
    [
      { name: 'hed-jitter', preset: 'strong' },
      { name: 'brightness', delta: 0.3 },
      { name: 'contrast', factor: 0.5 },
      { name: 'gamma', range: 0.5, protectBackground: false },
    ],
    [
      { name: 'brightness', delta: 0.4, protectBackground: false },
      { name: 'hed-jitter', sigma: 0.3 },
      { name: 'hed-jitter', sigma: 0.3 },
    ],
    [
      { name: 'contrast', factor: 0.4 },
      { name: 'gamma', range: 0.3 },
    ],
  ];
  it('match the formulas within a grey level at every step (the 10^-OD table is nearest-sample), input untouched', async () => {
    const tile = randomTile(33, 17, 'pix');
    const before = tile.data.slice();
    for (const spec of specs) {
      for (let s = 0; s < 5; s++) {
        // Step j of the fused chain against the reference step applied to the chain's output before it,
        // so a grey level of rounding is not amplified by the steps after it.
        let previous = tile;
        for (let j = 1; j <= spec.length; j++) {
          const fused = await buildPipeline(spec.slice(0, j)).apply(tile, createRng(`${s}`));
          const ref = reference(previous, [spec[j - 1]], `${s}`, j - 1);
          let worst = 0;
          let off = 0;
          ref.forEach((v, i) => {
            const d = Math.abs(fused.data[i] - v);
            worst = Math.max(worst, d);
            if (d) off++;
          });
          expect(worst, `${JSON.stringify(spec)} step ${j}`).toBeLessThanOrEqual(1);
          expect(off / ref.length).toBeLessThan(0.05);
          // The edit is real: the step changes the image.
          expect(Buffer.from(fused.data).equals(Buffer.from(previous.data))).toBe(false);
          previous = fused;
        }
      }
    }
    expect(tile.data).toEqual(before);
  });

  it('a fused chain with geometric steps equals the hand-checked remaps and the references', async () => {
    const tile = randomTile(12, 7, 'geo-pix');
    const spec = [{ name: 'hflip' }, { name: 'brightness', delta: 0.2 }, { name: 'vflip' }];
    const fused = await buildPipeline(spec).apply(tile, createRng('g'));
    const moved = flipVertical(flipHorizontal(tile));
    // The brightness step is step 1 of the chain: its draw comes from fork('1:brightness').
    const rng = createRng('g').fork('1:brightness').fork('brightness');
    const delta = rng.uniform(-0.2, 0.2);
    for (let p = 0; p < moved.data.length; p += 3) {
      const [r, g, b] = Array.from(moved.data.subarray(p, p + 3));
      const w = weight(r, g, b);
      for (let c = 0; c < 3; c++)
        expect(
          Math.abs(
            fused.data[p + c] -
              Math.round(moved.data[p + c] + w * (clamp(Math.round(moved.data[p + c] + 255 * delta)) - moved.data[p + c])),
          ),
        ).toBeLessThanOrEqual(1);
    }
  });

  it('the identity stain edit returns every byte unchanged (the 10^-OD table maps each value 1..255 to itself)', () => {
    // 0 is read as 1 (OD of no light is infinite), so channels run over 1..255.
    const all = new Uint8Array(256 * 256 * 3);
    for (let i = 0; i < 256 * 256; i++) all.set([1 + (i % 255), 1 + ((i >> 8) % 255), 1 + ((i * 7) % 255)], i * 3);
    const img = { width: 256, height: 256, data: all };
    expect(Buffer.from(scaleStains(img, [1, 1, 1], [0, 0, 0]).data).equals(Buffer.from(all))).toBe(true);
  });
});
