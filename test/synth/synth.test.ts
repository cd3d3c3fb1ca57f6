import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { rgbToHed } from '../../src/augment/index.ts';
import type { RgbImage } from '../../src/core/index.ts';
import { openSlide, readManifest } from '../../src/data/index.ts';
import { buildScene, designSlides, epitheliumAreas, generateSynthetic, renderSlide, type SynthSlide } from '../../src/synth/index.ts';

import { tempDir } from '../helpers.ts';

const dir = tempDir();

async function level0(path: string): Promise<RgbImage> {
  const s = await openSlide(path);
  const l = s.levels[0];
  const img = await s.readRegion(0, 0, 0, l.width, l.height);
  await s.close();
  return img;
}

async function mask(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).extractChannel(0).raw().toBuffer());
}

/** Pixel statistics measured on the rendered slide, inside the tissue its mask marks. */
function stats(img: RgbImage, labels: Uint8Array) {
  const hed = rgbToHed(img);
  let tissue = 0;
  let lumen = 0;
  let nuclear = 0;
  let hSum = 0;
  let eSum = 0;
  for (let p = 0; p < labels.length; p++) {
    if (labels[p] === 0) continue;
    tissue++;
    const h = hed[p * 3];
    const e = hed[p * 3 + 1];
    hSum += h;
    eSum += e;
    const od = h + e;
    if (od < 0.1) lumen++;
    if (h > 0.35) nuclear++;
  }
  return { tissue, lumenShare: lumen / tissue, nuclearShare: nuclear / tissue, meanH: hSum / tissue, meanE: eSum / tissue };
}

/** Sizes (pixels) of 4-connected components of a boolean map. */
function componentSizes(on: Uint8Array, w: number, h: number): number[] {
  const seen = new Uint8Array(on.length);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let s = 0; s < on.length; s++) {
    if (!on[s] || seen[s]) continue;
    let n = 0;
    stack.push(s);
    seen[s] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      n++;
      const x = p % w;
      for (const q of [p - 1, p + 1, p - w, p + w]) {
        if (q < 0 || q >= on.length || (q === p - 1 && x === 0) || (q === p + 1 && x === w - 1)) continue;
        if (on[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    sizes.push(n);
  }
  return sizes;
}

function design(over: Partial<SynthSlide> & { id: string }): SynthSlide {
  const [base] = designSlides({ task: over.task ?? 'prostate', slides: 1, out: dir, size: 1024, sites: 1, anomalies: 0, seed: 5 });
  return { ...base, ...over, path: `slides/${over.id}.tiff`, maskPath: `masks/${over.id}_mask.tiff` } as SynthSlide;
}

describe('synthetic prostate slides', () => {
  const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
  const byPattern: Record<string, ReturnType<typeof stats>[]> = {};
  beforeAll(async () => {
    for (const [name, primary, grade] of [
      ['benign', 0, 0],
      ['g3', 3, 1],
      ['g4', 4, 4],
      ['g5', 5, 5],
    ] as const) {
      byPattern[name] = [];
      for (const seed of SEEDS) {
        const s = design({
          id: `${name}-${seed}`,
          primary,
          secondary: primary,
          grade,
          seed: `t/${name}/${seed}`,
          site: 'site-A',
          scanner: 'neutral-reference',
        });
        await renderSlide(s, dir);
        byPattern[name].push(stats(await level0(join(dir, s.path)), await mask(join(dir, s.maskPath))));
      }
    }
  }, 600_000);

  const mean = (name: string, key: 'lumenShare' | 'nuclearShare') =>
    byPattern[name].reduce((a, s) => a + s[key], 0) / byPattern[name].length;

  it(`lumen area falls from benign through patterns 3, 4 and 5 (means of ${8} seeds each, measured on pixels)`, () => {
    const l = ['benign', 'g3', 'g4', 'g5'].map((n) => mean(n, 'lumenShare'));
    expect(l[0]).toBeGreaterThan(l[1]);
    expect(l[1]).toBeGreaterThan(l[2]);
    expect(l[2]).toBeGreaterThan(l[3]);
    expect(l[3]).toBeLessThan(0.01);
  });

  it('nuclear density rises from benign through patterns 3, 4 and 5 (the full chain)', () => {
    const n = ['benign', 'g3', 'g4', 'g5'].map((x) => mean(x, 'nuclearShare'));
    expect(n[1]).toBeGreaterThan(n[0]);
    expect(n[2]).toBeGreaterThan(n[1]);
    expect(n[3]).toBeGreaterThan(n[2]);
  });

  it('every graded slide holds its primary and secondary patterns, the primary the more extensive (every seed, every size)', () => {
    for (const size of [768, 1024, 1536]) {
      for (const seed of SEEDS) {
        for (const d of designSlides({ task: 'prostate', slides: 18, out: dir, size, sites: 3, anomalies: 0.2, seed })) {
          const a = epitheliumAreas(buildScene(d));
          const at = `${size} px, seed ${seed}, ${d.id} (${d.primary}+${d.secondary})`;
          if (!d.primary) {
            expect(
              [3, 4, 5].some((p) => a.has(p)),
              at,
            ).toBe(false);
            continue;
          }
          expect(a.get(d.primary) ?? 0, at).toBeGreaterThan(0);
          expect(a.get(d.secondary!) ?? 0, at).toBeGreaterThan(0);
          if (d.secondary !== d.primary) expect(a.get(d.primary)!, at).toBeGreaterThan(a.get(d.secondary!)!);
          for (const other of [3, 4, 5].filter((p) => p !== d.primary && p !== d.secondary)) expect(a.has(other), at).toBe(false);
        }
      }
    }
  }, 600_000);

  it('slides of one dataset differ in layout (the pattern field is seeded by the whole seed, not its length)', () => {
    const [a, b] = designSlides({ task: 'prostate', slides: 2, out: dir, size: 1024, sites: 1, anomalies: 0, seed: 3 });
    // Same grade and same seed length, different seed: the pattern regions must not coincide.
    const one = buildScene({ ...a, primary: 3, secondary: 4, seed: 'layout/a' });
    const two = buildScene({ ...b, primary: 3, secondary: 4, seed: 'layout/b', width: a.width, height: a.height });
    const centres = (sc: ReturnType<typeof buildScene>) =>
      sc.regions
        .filter((r) => r.label === 4)
        .map((r) => `${Math.round(r.box[0] / 50)},${Math.round(r.box[1] / 50)}`)
        .sort()
        .join(' ');
    expect(centres(one)).not.toEqual(centres(two));
  });

  it('the mask lines up with the pixels: background is glass, tissue is stained', async () => {
    const img = await level0(join(dir, 'slides/g4-1.tiff'));
    const m = await mask(join(dir, 'masks/g4-1_mask.tiff'));
    let glassBright = 0;
    let glass = 0;
    let tissueStained = 0;
    let tissue = 0;
    for (let p = 0; p < m.length; p++) {
      const mean3 = (img.data[p * 3] + img.data[p * 3 + 1] + img.data[p * 3 + 2]) / 3;
      if (m[p] === 0) {
        glass++;
        if (mean3 > 230) glassBright++;
      } else if (m[p] === 1 || m[p] === 4) {
        tissue++;
        if (mean3 < 235) tissueStained++;
      }
    }
    expect(glassBright / glass).toBeGreaterThan(0.97);
    expect(tissueStained / tissue).toBeGreaterThan(0.9);
    expect(new Set(m)).toEqual(new Set([0, 1, 2, 4].filter((v) => m.includes(v))));
    expect(m.includes(4)).toBe(true);
  });
});

describe('synthetic breast slides', () => {
  it('nuclear size, size spread and mitoses follow the Nottingham component scores', async () => {
    const median: number[] = [];
    const spread: number[] = [];
    const mitotic: number[] = [];
    for (const score of [1, 2, 3]) {
      const s = design({
        task: 'breast',
        id: `breast-${score}`,
        tubules: 2,
        pleomorphism: score,
        mitoses: score,
        grade: 2,
        seed: `t/breast/${score}`,
        site: 'site-A',
        scanner: 'neutral-reference',
        height: 1024,
      });
      await renderSlide(s, dir);
      const img = await level0(join(dir, s.path));
      const hed = rgbToHed(img);
      const nuclei = new Uint8Array(img.width * img.height);
      const condensed = new Uint8Array(img.width * img.height);
      for (let p = 0; p < nuclei.length; p++) {
        nuclei[p] = hed[p * 3] > 0.55 ? 1 : 0;
        condensed[p] = hed[p * 3] > 1.3 ? 1 : 0;
      }
      const sizes = componentSizes(nuclei, img.width, img.height)
        .filter((n) => n >= 8)
        .sort((a, b) => a - b);
      const q = (f: number) => sizes[Math.floor(f * (sizes.length - 1))];
      median.push(q(0.5));
      spread.push((q(0.75) - q(0.25)) / q(0.5));
      // Area of condensed chromatin (the star-shaped figures break into small pieces at this level).
      mitotic.push(condensed.reduce((a, v) => a + v, 0));
    }
    expect(median[1]).toBeGreaterThan(median[0]);
    expect(median[2]).toBeGreaterThan(median[1]);
    expect(spread[1]).toBeGreaterThan(spread[0]);
    expect(spread[2]).toBeGreaterThan(spread[1]);
    expect(mitotic[1]).toBeGreaterThan(mitotic[0]);
    expect(mitotic[2]).toBeGreaterThan(mitotic[1]);
  });
});

describe('generateSynthetic', () => {
  let manifest: string;
  beforeAll(async () => {
    ({ manifest } = await generateSynthetic({
      task: 'prostate',
      slides: 8,
      out: join(dir, 'set'),
      size: 768,
      sites: 3,
      anomalies: 0.25,
      seed: 3,
    }));
  });

  it('writes a manifest gradelab reads, with patients, sites, scanners and anomalies', () => {
    const m = readManifest(manifest);
    expect(m.records).toHaveLength(8);
    expect(new Set(m.records.map((r) => r.site)).size).toBe(3);
    expect(m.records.filter((r) => r.anomaly)).toHaveLength(2);
    expect(new Set(m.records.map((r) => r.patientId)).size).toBeLessThan(8);
    // Each slide's ISUP grade group follows from its Gleason score (Epstein et al. 2016, ISUP 2014 consensus).
    const isup: Record<string, number> = {
      '0+0': 0,
      negative: 0,
      '3+3': 1,
      '3+4': 2,
      '4+3': 3,
      '4+4': 4,
      '3+5': 4,
      '5+3': 4,
      '4+5': 5,
      '5+4': 5,
      '5+5': 5,
    };
    for (const r of m.records) expect(r.grade, `${r.slideId} ${r.labels.gleason_score}`).toBe(isup[r.labels.gleason_score]);
    expect(new Set(m.records.map((r) => r.grade)).size).toBeGreaterThan(2);
  });

  it('is deterministic per seed', async () => {
    const a = await generateSynthetic({
      task: 'prostate',
      slides: 2,
      out: join(dir, 'det-a'),
      size: 512,
      anomalies: 0.5,
      seed: 4,
      workers: 2,
    });
    // The same slides whether worker threads or this thread render them.
    await generateSynthetic({ task: 'prostate', slides: 2, out: join(dir, 'det-b'), size: 512, anomalies: 0.5, seed: 4, workers: 1 });
    for (const s of a.slides) {
      expect(readFileSync(join(dir, 'det-a', s.path)).equals(readFileSync(join(dir, 'det-b', s.path)))).toBe(true);
      expect(readFileSync(join(dir, 'det-a', s.maskPath)).equals(readFileSync(join(dir, 'det-b', s.maskPath)))).toBe(true);
    }
    const other = await generateSynthetic({ task: 'prostate', slides: 1, out: join(dir, 'det-c'), size: 512, anomalies: 0.5, seed: 5 });
    expect(readFileSync(join(dir, 'det-c', other.slides[0].path)).equals(readFileSync(join(dir, 'det-a', a.slides[0].path)))).toBe(false);
  });

  it('sites differ in mean optical density per stain', async () => {
    const m = readManifest(manifest);
    const perSite = new Map<string, { h: number; e: number; n: number }>();
    for (const r of m.records.filter((x) => !x.anomaly)) {
      const st = stats(await level0(r.path), await mask(r.path.replace('/slides/', '/masks/').replace('.tiff', '_mask.tiff')));
      const acc = perSite.get(r.site) ?? { h: 0, e: 0, n: 0 };
      acc.h += st.meanH;
      acc.e += st.meanE;
      acc.n++;
      perSite.set(r.site, acc);
    }
    const means = [...perSite.values()].map((v) => [v.h / v.n, v.e / v.n]);
    expect(means.length).toBe(3);
    const spreadE = Math.max(...means.map((x) => x[1])) - Math.min(...means.map((x) => x[1]));
    const spreadH = Math.max(...means.map((x) => x[0])) - Math.min(...means.map((x) => x[0]));
    expect(Math.max(spreadE, spreadH)).toBeGreaterThan(0.03);
  });

  it('refuses to mix settings in one folder', async () => {
    await expect(generateSynthetic({ task: 'prostate', slides: 9, out: join(dir, 'set'), size: 768, seed: 3 })).rejects.toThrow(
      /other settings/,
    );
  });

  it('SVS format opens as Aperio with its thumbnail', async () => {
    const { slides } = await generateSynthetic({
      task: 'breast',
      slides: 1,
      out: join(dir, 'svs'),
      size: 768,
      format: 'svs',
      anomalies: 0,
    });
    const s = await openSlide(join(dir, 'svs', slides[0].path));
    expect(s.vendor).toBe('aperio');
    expect(s.mpp).toBeCloseTo(0.5, 4);
    expect(s.associatedImages).toContain('thumbnail');
    expect(s.levels.map((l) => l.width)).toEqual([768, 192, 48]);
    await s.close();
  });
});
