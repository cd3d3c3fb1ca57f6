import { createRng, type RgbImage } from '../../src/core/index.ts';

/**
 * An H&E-like tile rendered by Beer-Lambert from known stain vectors (rows over R, G, B, unit length):
 * eosin-stained stroma everywhere in the tissue, haematoxylin nuclei as discs, a glass region (white)
 * in one corner. I = Io x exp(-(cH h + cE e)).
 */
export const TEST_H = [0.65, 0.7, 0.29].map((v, _, a) => v / Math.hypot(...a));
export const TEST_E = [0.07, 0.99, 0.11].map((v, _, a) => v / Math.hypot(...a));

export function stainedTile(size = 96, seed = 1, options: { Io?: number; h?: number[]; e?: number[]; glass?: boolean } = {}): RgbImage {
  const Io = options.Io ?? 255;
  const h = options.h ?? TEST_H;
  const e = options.e ?? TEST_E;
  const rng = createRng(seed);
  const nuclei = Array.from({ length: Math.round((size * size) / 300) }, () => ({
    x: rng.uniform(0, size),
    y: rng.uniform(0, size),
    r: rng.uniform(2, 5),
    c: rng.uniform(0.6, 1.2),
  }));
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      if (options.glass !== false && x + y < size * 0.35) {
        data.fill(Io >= 255 ? 255 : Io, i, i + 3);
        continue;
      }
      let ch = 0.05;
      let ce = 0.35 + 0.25 * Math.sin(x / 7) * Math.cos(y / 9);
      for (const n of nuclei) {
        if ((x - n.x) ** 2 + (y - n.y) ** 2 <= n.r * n.r) {
          ch = n.c;
          ce *= 0.4;
        }
      }
      for (let c = 0; c < 3; c++) data[i + c] = Math.max(0, Math.min(255, Math.round(Io * Math.exp(-(ch * h[c] + ce * e[c]) * 2.3))));
    }
  }
  return { width: size, height: size, data };
}

/** Peak signal-to-noise ratio of two 8-bit images in dB (Infinity when identical). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s === 0 ? Infinity : 10 * Math.log10((255 * 255) / (s / a.length));
}
