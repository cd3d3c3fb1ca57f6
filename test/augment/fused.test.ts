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

describe('fused pixel ops', () => {
  const specs = [
    [{ name: 'hed-jitter', preset: 'strong' }, { name: 'brightness', delta: 0.3 }, { name: 'contrast', factor: 0.5 }, { name: 'gamma', range: 0.5, protectBackground: false }],
    [{ name: 'brightness', delta: 0.4, protectBackground: false }, { name: 'hed-jitter', sigma: 0.3 }, { name: 'hed-jitter', sigma: 0.3 }],
    [{ name: 'hflip' }, { name: 'hed-jitter', preset: 'light' }, { name: 'gaussian-blur', sigma: 1 }, { name: 'rot90' }, { name: 'contrast' }],
  ];
  it('give the bytes of running the steps one by one, input untouched', async () => {
    const tile = randomTile(33, 17, 'pix');
    const before = tile.data.slice();
    for (const spec of specs) {
      for (let s = 0; s < 5; s++) {
        const seed = `${s}`;
        const fused = await buildPipeline(spec).apply(tile, createRng(seed));
        let seq = tile;
        for (const [i, step] of spec.entries()) seq = await transformFromSpec(step).apply(seq, createRng(seed).fork(`${i}:${step.name}`).fork(step.name));
        expect(Buffer.from(fused.data).equals(Buffer.from(seq.data))).toBe(true);
      }
    }
    expect(tile.data).toEqual(before);
  });
  it('the identity stain edit returns every byte unchanged (the 10^-OD table maps each value 1..255 to itself)', () => {
    // 0 is read as 1 (OD of no light is infinite), so channels run over 1..255.
    const all = new Uint8Array(256 * 256 * 3);
    for (let i = 0; i < 256 * 256; i++) all.set([1 + (i % 255), 1 + ((i >> 8) % 255), 1 + ((i * 7) % 255)], i * 3);
    const img = { width: 256, height: 256, data: all };
    expect(Buffer.from(scaleStains(img, [1, 1, 1], [0, 0, 0]).data).equals(Buffer.from(all))).toBe(true);
  });
});
