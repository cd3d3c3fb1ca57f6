import { describe, expect, it } from 'vitest';
import { transformFromSpec } from '../../src/augment/index.ts';
import { createRng, type RgbImage } from '../../src/core/index.ts';
import { auroc } from '../../src/metrics/index.ts';
import { createDetector, imagesQuality, qualityFeatures, QUALITY_FEATURES, type FeatureSet } from '../../src/ood/index.ts';
import { buildScene, designSlides, renderRegion, SITES } from '../../src/synth/index.ts';

const feature = (img: RgbImage, name: (typeof QUALITY_FEATURES)[number]) => qualityFeatures(img)[QUALITY_FEATURES.indexOf(name)];
const flat = (rgb: [number, number, number], size = 16): RgbImage => ({
  width: size,
  height: size,
  data: Uint8Array.from({ length: size * size * 3 }, (_, i) => rgb[i % 3]),
});

function set(images: RgbImage[]): FeatureSet {
  return {
    n: images.length,
    k: 2,
    d: 1,
    logits: new Float32Array(images.length * 2),
    features: new Float32Array(images.length),
    quality: imagesQuality(images),
  };
}

describe('slide-quality features', () => {
  it('measure what they say on images whose answer is known by hand', () => {
    expect(feature(flat([255, 255, 255]), 'glass_share')).toBe(1);
    expect(feature(flat([200, 120, 170]), 'glass_share')).toBe(0);
    // A flat image has no Laplacian: sharpness log(1 + 0) = 0.
    expect(feature(flat([200, 120, 170]), 'sharpness')).toBe(0);
    // Pure green and pure blue are ink colours (hues 120 and 240 degrees); H&E's pink (hue ~320) is not.
    expect(feature(flat([40, 160, 60]), 'ink_share')).toBe(1);
    expect(feature(flat([50, 60, 170]), 'ink_share')).toBe(1);
    expect(feature(flat([200, 120, 170]), 'ink_share')).toBe(0);
    // Value 0.2 (51/255) is dark; 0.8 is not.
    expect(feature(flat([51, 40, 45]), 'dark_share')).toBe(1);
    expect(feature(flat([204, 150, 190]), 'dark_share')).toBe(0);
    // OD of (v, v, v) is 3 log10(255 / v): 3 log10(255/100) = 1.2199.
    expect(feature(flat([100, 100, 100]), 'od_mean')).toBeCloseTo(3 * Math.log10(255 / 100), 5);
  });
});

/** H&E tiles as the synthetic slides render them (Beer-Lambert, a site's stain protocol), inside tissue. */
function renderedTiles(n: number, seed: number): RgbImage[] {
  const [d] = designSlides({ task: 'prostate', slides: 1, out: '/unused', size: 2048, sites: 1, anomalies: 0, seed });
  const scene = buildScene({ ...d, primary: 3, secondary: 4 });
  const out: RgbImage[] = [];
  const rng = createRng(`tiles-${seed}`);
  while (out.length < n) {
    const x = Math.floor(rng.uniform(0, d.width - 96));
    const y = Math.floor(rng.uniform(0, d.height - 96));
    if (!scene.inTissue(x + 48, y + 48)) continue;
    out.push(renderRegion(scene, SITES[0], x, y, 96, 96).rgb);
  }
  return out;
}

/** A green marker stroke drawn by hand: a band 12 pixels wide, light through ink (0.25, 0.6, 0.35). */
function greenInk(img: RgbImage, offset: number): RgbImage {
  const data = img.data.slice();
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (Math.abs(x - y - offset) > 6) continue;
      const i = (y * img.width + x) * 3;
      [0.25, 0.6, 0.35].forEach((t, c) => (data[i + c] = Math.round(data[i + c] * t)));
    }
  }
  return { ...img, data };
}

describe('qc-* detectors (fitted on clean tiles as the synthetic slides render them)', () => {
  const train = renderedTiles(40, 1);
  const held = renderedTiles(30, 2);
  const base = renderedTiles(30, 3);
  const separation = async (name: string, bad: RgbImage[]) => {
    const det = createDetector(name);
    det.fit(set(train));
    return auroc([...held.map(() => 0), ...bad.map(() => 1)], [...det.score(set(held)), ...det.score(set(bad))]);
  };
  const artifact = (spec: Record<string, unknown>) =>
    Promise.all(base.map((img, i) => transformFromSpec(spec).apply(img, createRng(`q${i}`))));

  it.each([
    ['qc-focus', { name: 'gaussian-blur', severity: 3 }],
    ['qc-focus', { name: 'defocus-blur', severity: 3 }],
    ['qc-fold', { name: 'air-bubbles', severity: 4 }],
    ['qc-stain', { name: 'tissue-fold', severity: 4 }],
    ['qc-all', { name: 'pen-marks', severity: 3 }],
    ['qc-all', { name: 'gaussian-blur', severity: 3 }],
    ['qc-all', { name: 'tissue-fold', severity: 4 }],
    ['qc-all', { name: 'air-bubbles', severity: 4 }],
  ])('%s tells clean tiles from %o (AUROC above 0.95)', async (name, spec) => {
    expect(await separation(name, await artifact(spec))).toBeGreaterThan(0.95);
  });

  it('qc-ink catches green marker ink, a colour no stain makes', async () => {
    expect(
      await separation(
        'qc-ink',
        base.map((img, i) => greenInk(img, (i % 5) * 10 - 20)),
      ),
    ).toBeGreaterThan(0.95);
  });

  it('qc-focus does not flag ink, nor qc-ink blur (each looks at its own artifact)', async () => {
    expect(
      await separation(
        'qc-focus',
        base.map((img, i) => greenInk(img, (i % 5) * 10 - 20)),
      ),
    ).toBeLessThan(0.8);
    expect(await separation('qc-ink', await artifact({ name: 'gaussian-blur', severity: 3 }))).toBeLessThan(0.8);
  });

  it('refuse a feature set without quality features', () => {
    expect(() => createDetector('qc-all').fit({ n: 1, k: 2, d: 1, logits: new Float32Array(2), features: new Float32Array(1) })).toThrow(
      /qc-all needs the tiles' quality features/,
    );
  });
});
