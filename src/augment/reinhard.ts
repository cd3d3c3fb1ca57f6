import { z } from 'zod';
import { ConfigError, type RgbImage } from '../core/index.ts';
import { labToRgb, rgbToLab, tissueWeight } from './colourSpaces.ts';
import { defineTransform } from './transform.ts';

export interface ReinhardState {
  method: 'reinhard';
  /** L*, a*, b* means and standard deviations of the target's tissue pixels. */
  means: [number, number, number];
  stds: [number, number, number];
}

/** Mean and standard deviation per LAB channel over tissue pixels (glass excluded). */
export function labStats(img: RgbImage): { means: [number, number, number]; stds: [number, number, number]; pixels: number } {
  const lab = rgbToLab(img);
  const s = [0, 0, 0];
  const s2 = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < lab.length; i += 3) {
    if (tissueWeight(img.data[i], img.data[i + 1], img.data[i + 2]) < 1) continue;
    n++;
    for (let c = 0; c < 3; c++) {
      s[c] += lab[i + c];
      s2[c] += lab[i + c] * lab[i + c];
    }
  }
  const means = s.map((v) => (n ? v / n : 0)) as [number, number, number];
  const stds = s2.map((v, c) => (n ? Math.sqrt(Math.max(0, v / n - means[c] ** 2)) : 0)) as [number, number, number];
  return { means, stds, pixels: n };
}

/**
 * Reinhard et al. (2001) colour transfer in CIE L*a*b*: each channel of the tissue pixels shifted and
 * scaled to the target's mean and standard deviation. Glass stays as it is.
 */
export class ReinhardNormalizer {
  constructor(public state?: ReinhardState) {}

  fit(target: RgbImage): this {
    const st = labStats(target);
    if (st.pixels < 50) throw new ConfigError('Reinhard fit: the target has too few tissue pixels');
    this.state = { method: 'reinhard', means: st.means, stds: st.stds };
    return this;
  }

  transform(img: RgbImage): RgbImage {
    if (!this.state) throw new ConfigError('Reinhard normaliser used before fit()');
    const src = labStats(img);
    if (src.pixels < 50) return { width: img.width, height: img.height, data: img.data.slice() };
    const lab = rgbToLab(img);
    const { means, stds } = this.state;
    const scale = stds.map((t, c) => (src.stds[c] > 1e-6 ? t / src.stds[c] : 1));
    for (let i = 0; i < lab.length; i += 3) {
      for (let c = 0; c < 3; c++) lab[i + c] = (lab[i + c] - src.means[c]) * scale[c] + means[c];
    }
    const out = labToRgb(lab, img.width, img.height);
    for (let i = 0; i < img.data.length; i += 3) {
      const w = tissueWeight(img.data[i], img.data[i + 1], img.data[i + 2]);
      if (w === 1) continue;
      for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(img.data[i + c] + w * (out.data[i + c] - img.data[i + c]));
    }
    return out;
  }

  toJSON(): ReinhardState {
    if (!this.state) throw new ConfigError('Reinhard normaliser has no fitted state');
    return this.state;
  }

  static fromJSON(state: ReinhardState): ReinhardNormalizer {
    return new ReinhardNormalizer(state);
  }
}

defineTransform({
  name: 'reinhard-normalize',
  kind: 'normalise',
  description: 'Reinhard LAB normalisation to given target means and standard deviations (from ReinhardNormalizer.fit)',
  schema: z.object({
    means: z.array(z.number()).length(3),
    stds: z.array(z.number().nonnegative()).length(3),
  }),
  make: (p) => {
    const n = new ReinhardNormalizer({
      method: 'reinhard',
      means: p.means as [number, number, number],
      stds: p.stds as [number, number, number],
    });
    return (img: RgbImage) => n.transform(img);
  },
});
