import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import { hedToRgb, rgbToHed, scaleStains, transformFromSpec, tissueWeight } from '../../src/augment/index.ts';
import { stainedTile } from './tiles.ts';

describe('HED colour deconvolution (Ruifrok & Johnston)', () => {
  it('round-trips within 1 grey level on tissue pixels', () => {
    const tile = stainedTile(64);
    const back = hedToRgb(rgbToHed(tile), 64, 64);
    let worst = 0;
    for (let i = 0; i < tile.data.length; i++) if (tile.data[i] > 0) worst = Math.max(worst, Math.abs(back.data[i] - tile.data[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('gives the known concentrations of a pure-stain pixel', () => {
    // A pixel of pure haematoxylin at OD 0.5 along the H vector.
    const h = [0.65, 0.7, 0.29];
    const n = Math.hypot(...h);
    const px = h.map((v) => Math.round(255 * 10 ** (-(0.5 * v) / n)));
    const c = rgbToHed({ width: 1, height: 1, data: Uint8Array.from(px) });
    expect(c[0]).toBeCloseTo(0.5, 1);
    expect(Math.abs(c[1])).toBeLessThan(0.02);
    expect(Math.abs(c[2])).toBeLessThan(0.02);
  });

  it('white is zero stain and glass has zero tissue weight', () => {
    const c = rgbToHed({ width: 1, height: 1, data: Uint8Array.from([255, 255, 255]) });
    expect([...c]).toEqual([0, 0, 0].map(() => expect.closeTo(0, 6)));
    expect(tissueWeight(255, 255, 255)).toBe(0);
    expect(tissueWeight(120, 60, 160)).toBe(1);
  });
});

describe('HED jitter (Tellez)', () => {
  it('light and strong presets are sigma 0.05 and 0.2', () => {
    expect(transformFromSpec({ name: 'hed-jitter', preset: 'light' }).params.sigma).toBe(0.05);
    expect(transformFromSpec({ name: 'hed-jitter', preset: 'strong' }).params.sigma).toBe(0.2);
  });

  it('changes tissue, leaves glass exactly white, and strong changes more than light', async () => {
    const tile = stainedTile(64);
    const diff = async (preset: string) => {
      let d = 0;
      for (let s = 0; s < 8; s++) {
        const out = await transformFromSpec({ name: 'hed-jitter', preset }).apply(tile, createRng(s));
        for (let i = 0; i < tile.data.length; i += 3) {
          if (tile.data[i] === 255 && tile.data[i + 1] === 255)
            expect([out.data[i], out.data[i + 1], out.data[i + 2]]).toEqual([255, 255, 255]);
          d += Math.abs(out.data[i] - tile.data[i]);
        }
      }
      return d;
    };
    const light = await diff('light');
    const strong = await diff('strong');
    expect(light).toBeGreaterThan(0);
    expect(strong).toBeGreaterThan(2 * light);
  });

  it('scaling H alone darkens nuclei and leaves eosin-only pixels nearly unchanged', () => {
    const nucleus = { width: 1, height: 1, data: Uint8Array.from([90, 60, 150]) };
    const out = scaleStains(nucleus, [1.5, 1, 1], [0, 0, 0]);
    expect(out.data[0]).toBeLessThan(90);
    // An eosin-only pixel rendered by Beer-Lambert from Ruifrok's E vector (concentration 0.8):
    // I = 255 x 10^(-0.8 e), e = (0.07, 0.99, 0.11) / |.|. It holds no haematoxylin to scale.
    const e = [0.07, 0.99, 0.11].map((v, _, a) => v / Math.hypot(...a));
    const eosin = { width: 1, height: 1, data: Uint8Array.from(e, (v) => Math.round(255 * 10 ** (-0.8 * v))) };
    const after = scaleStains(eosin, [1.5, 1, 1], [0, 0, 0]);
    for (let c = 0; c < 3; c++) expect(Math.abs(after.data[c] - eosin.data[c])).toBeLessThanOrEqual(1);
    // Scaling E instead does change it: the test can tell.
    expect(Math.abs(scaleStains(eosin, [1, 1.5, 1], [0, 0, 0]).data[1] - eosin.data[1])).toBeGreaterThan(10);
  });
});
