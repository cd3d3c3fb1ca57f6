import { describe, expect, it } from 'vitest';
import { motionBlur, transformFromSpec } from '../../src/augment/index.ts';
import { createRng } from '../../src/core/index.ts';
import { referenceCrop, references } from '../fixtures/reference/references.ts';

describe('ImageNet-C corruptions against their reference implementations', () => {
  it("motion blur equals ImageMagick's MotionBlurImage (through Wand, as ImageNet-C calls it) within a grey level", async () => {
    const crop = await referenceCrop();
    for (const m of references.motion as { radius: number; sigma: number; angle: number; pixels: string }[]) {
      const want = Buffer.from(m.pixels, 'base64');
      const got = motionBlur(crop, m.radius, m.sigma, m.angle);
      let worst = 0;
      let off = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got.data[i] - want[i]);
        worst = Math.max(worst, d);
        if (d > 0) off++;
      }
      expect(worst, `radius ${m.radius} angle ${m.angle}`).toBeLessThanOrEqual(1);
      expect(off / want.length).toBeLessThan(0.05);
    }
  });

  it('motion blur at radius r streaks 2r + 1 pixels to one side (a point spreads over them)', () => {
    const w = 41;
    const img = { width: w, height: 5, data: new Uint8Array(w * 5 * 3) };
    img.data.fill(0);
    const x0 = 10;
    for (let c = 0; c < 3; c++) img.data[(2 * w + x0) * 3 + c] = 255;
    const out = motionBlur(img, 3, 100, 0);
    const lit = Array.from({ length: w }, (_, x) => out.data[(2 * w + x) * 3])
      .map((v, x) => (v > 0 ? x : -1))
      .filter((x) => x >= 0);
    // Output x reads x + i for i = 0..6: the point at 10 shows at x = 4..10.
    expect(lit).toEqual([4, 5, 6, 7, 8, 9, 10]);
  });

  it("contrast loss pulls each channel toward its own mean (ImageNet-C's formula), keeping the colour balance", async () => {
    const crop = await referenceCrop();
    for (const c of references.contrast as { factor: number; pixels: number[] }[]) {
      const out = await transformFromSpec({ name: 'contrast-loss', factor: c.factor }).apply(crop, createRng('c'));
      let worst = 0;
      c.pixels.forEach((v, i) => (worst = Math.max(worst, Math.abs(out.data[i] - v))));
      expect(worst, `factor ${c.factor}`).toBeLessThanOrEqual(0.5 + 1e-9);
    }
  });
});
