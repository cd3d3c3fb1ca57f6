import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/core/index.ts';
import {
  createInMemorySlide,
  detectTissue,
  maskFromImage,
  otsuThreshold,
  planTiles,
  readThumbnail,
  removeSmallComponents,
  tissueDiscs,
  tissueFraction,
  tissueThreshold,
  tissueIoU,
  openSlide,
} from '../../src/data/index.ts';
import { designSlides, renderSlide, type SynthSlide } from '../../src/synth/index.ts';
import { tempDir } from '../helpers.ts';

describe('otsuThreshold', () => {
  it('splits a bimodal histogram between its modes', () => {
    const hist = new Array(256).fill(0);
    for (let i = 0; i < 20; i++) {
      hist[40 + i] = 100;
      hist[180 + i] = 50;
    }
    const t = otsuThreshold(hist);
    expect(t).toBeGreaterThanOrEqual(59);
    expect(t).toBeLessThan(180);
  });
});

describe('tissueThreshold', () => {
  const bumps = (...modes: [number, number][]) => {
    const hist = new Array(256).fill(0);
    for (const [centre, count] of modes) for (let d = -6; d <= 6; d++) hist[centre + d] += count * Math.exp(-(d * d) / 8);
    return hist;
  };

  it('cuts glass from tissue when dense nuclei are the strongest contrast', () => {
    // Glass at 22, stroma at 88, nuclei at 180 (saturation of a high-grade slide on a bright scanner):
    // Otsu alone cuts between stroma and nuclei; the tissue cut lies between glass and stroma.
    const hist = bumps([22, 25], [88, 40], [180, 35]);
    expect(otsuThreshold(hist)).toBeGreaterThan(88);
    const t = tissueThreshold(hist, 20);
    expect(t).toBeGreaterThanOrEqual(28);
    expect(t).toBeLessThan(82);
  });

  it("is Otsu's cut when glass and tissue are the two populations, and never below the floor", () => {
    const hist = bumps([10, 50], [120, 50]);
    expect(tissueThreshold(hist, 5)).toBe(otsuThreshold(hist));
    // Glass alone (one population): Otsu splits its noise, the floor keeps it all background.
    const glass = bumps([8, 100]);
    expect(otsuThreshold(glass)).toBeLessThan(20);
    expect(tissueThreshold(glass, 20)).toBe(20);
  });
});

describe('tissueIoU', () => {
  it('compares a coarse mask with level-0 labels pixel by pixel', () => {
    // A 2 x 1 mask at downsample 2 (left tissue) against 4 x 2 labels with tissue in columns 1-2:
    // intersection 2 (column 1), union 6 (columns 0-2), mask pixels counted at level 0: 4.
    const data = Uint8Array.from([1, 0]);
    const mask = { width: 2, height: 1, data, downsample: 2, method: 'saturation' as const, threshold: 0, integral: new Float64Array(6) };
    const labels = { width: 4, height: 2, data: Uint8Array.from([0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0]) };
    expect(tissueIoU(mask, labels)).toEqual({ iou: 2 / 6, found: 4 });
  });
});

describe('removeSmallComponents', () => {
  it('drops objects below the area and fills small holes only', () => {
    // 6x6: a 1-pixel speck, and a 3x3 block with a 1-pixel hole.
    const m = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    removeSmallComponents(m, 6, 6, 1, 2);
    expect(m[0]).toBe(0);
    expect(m[14]).toBe(1);
    removeSmallComponents(m, 6, 6, 0, 2, true);
    expect(m[21]).toBe(1); // hole filled
    expect(m[35]).toBe(0); // outside background kept
  });
});

/** Component sizes by union-find (8-connectivity): an independent labelling to check the flood fill against. */
function componentSizes(
  m: Uint8Array,
  w: number,
  h: number,
  value: number,
): { root: Int32Array; size: Map<number, number>; border: Set<number> } {
  const parent = Int32Array.from({ length: m.length }, (_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      if (m[p] !== value) continue;
      for (const [dx, dy] of [
        [1, 0],
        [-1, 1],
        [0, 1],
        [1, 1],
      ]) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx >= 0 && nx < w && ny < h && m[ny * w + nx] === value) parent[find(ny * w + nx)] = find(p);
      }
    }
  const root = Int32Array.from({ length: m.length }, (_, i) => (m[i] === value ? find(i) : -1));
  const size = new Map<number, number>();
  const border = new Set<number>();
  root.forEach((r, i) => {
    if (r < 0) return;
    size.set(r, (size.get(r) ?? 0) + 1);
    if (i % w === 0 || i % w === w - 1 || i < w || i >= w * (h - 1)) border.add(r);
  });
  return { root, size, border };
}

describe('removeSmallComponents on random masks', () => {
  it('flips exactly the components under the area (border components kept for holes), as a union-find labelling finds them', () => {
    const rng = createRng(11);
    for (let trial = 0; trial < 6; trial++) {
      const [w, h] = [40 + rng.int(60), 30 + rng.int(50)];
      const m = Uint8Array.from({ length: w * h }, () => (rng.next() < 0.45 ? 1 : 0));
      for (const [value, keepBorder] of [
        [1, false],
        [0, true],
      ] as const) {
        const before = m.slice();
        const { root, size, border } = componentSizes(before, w, h, value);
        removeSmallComponents(m, w, h, value, 5, keepBorder);
        for (let i = 0; i < m.length; i++) {
          const small = root[i] >= 0 && size.get(root[i])! < 5 && !(keepBorder && border.has(root[i]));
          expect(m[i], `trial ${trial}, value ${value}, pixel ${i}`).toBe(small ? 1 - value : before[i]);
        }
      }
    }
  });
});

describe('tissue detection', () => {
  const disc = { cx: 20_000, cy: 12_000, r: 8_000 };
  const slide = createInMemorySlide({ width: 40_000, height: 24_000, mpp: 0.5, downsamples: [1, 4, 16, 64], pixel: tissueDiscs([disc]) });

  it('reads a bounded thumbnail from the right level', async () => {
    const { image, downsample } = await readThumbnail(slide, 1024);
    expect(Math.max(image.width, image.height)).toBeLessThanOrEqual(1024);
    expect(downsample).toBeGreaterThanOrEqual(40_000 / 1024);
  });

  it('finds a disc with the area of a disc', async () => {
    const mask = await detectTissue(slide, { maxSide: 1024 });
    const whole = tissueFraction(mask, 0, 0, 40_000, 24_000);
    const expected = (Math.PI * disc.r * disc.r) / (40_000 * 24_000);
    expect(Math.abs(whole - expected) / expected).toBeLessThan(0.03);
    expect(tissueFraction(mask, disc.cx - 1000, disc.cy - 1000, 2000, 2000)).toBeCloseTo(1, 9);
    expect(tissueFraction(mask, 0, 0, 3000, 3000)).toBe(0);
    // A square straddling the disc's left edge: about half tissue.
    const half = tissueFraction(mask, disc.cx - disc.r - 500, disc.cy - 500, 1000, 1000);
    expect(half).toBeGreaterThan(0.3);
    expect(half).toBeLessThan(0.7);
  });

  it('optical density works too, and an empty slide has no tissue', async () => {
    const mask = await detectTissue(slide, { maxSide: 512, method: 'od' });
    expect(tissueFraction(mask, disc.cx - 1000, disc.cy - 1000, 2000, 2000)).toBeCloseTo(1, 9);
    const glass = createInMemorySlide({ width: 5000, height: 5000, mpp: 0.5, pixel: tissueDiscs([]) });
    const empty = await detectTissue(glass, { maxSide: 256 });
    expect(tissueFraction(empty, 0, 0, 5000, 5000)).toBe(0);
  });

  it('fractions are exact on a hand-made mask, including partial pixels', () => {
    const img = { width: 4, height: 1, data: Uint8Array.from([245, 245, 245, 200, 100, 190, 200, 100, 190, 245, 245, 245]) };
    const mask = maskFromImage(img, 10, { minObjectArea: 0, minHoleArea: 0 });
    expect([...mask.data]).toEqual([0, 1, 1, 0]);
    expect(tissueFraction(mask, 0, 0, 40, 10)).toBeCloseTo(0.5, 10);
    expect(tissueFraction(mask, 5, 0, 10, 10)).toBeCloseTo(0.5, 10); // half of pixel 0, half of pixel 1
  });
});

describe('planTiles', () => {
  const slide = createInMemorySlide({
    width: 4096,
    height: 2048,
    mpp: 0.25,
    downsamples: [1, 4, 16],
    pixel: tissueDiscs([{ cx: 1024, cy: 1024, r: 900 }]),
  });

  it('reads from the most reduced level not coarser than the target', () => {
    const at05 = planTiles(slide, undefined, { tileSize: 256, mpp: 0.5 });
    expect([at05.level, at05.readSize, at05.downsample]).toEqual([0, 512, 2]);
    expect(at05.tiles).toHaveLength(8 * 4);
    const at1 = planTiles(slide, undefined, { tileSize: 256, mpp: 1.0 });
    expect([at1.level, at1.readSize]).toEqual([1, 256]);
    const at2 = planTiles(slide, undefined, { tileSize: 128, mpp: 2.0 });
    expect([at2.level, at2.readSize]).toEqual([1, 256]);
  });

  it('honours stride and the tissue threshold', async () => {
    const overlap = planTiles(slide, undefined, { tileSize: 256, mpp: 0.5, stride: 128 });
    expect(overlap.tiles).toHaveLength(15 * 7);
    const mask = await detectTissue(slide, { maxSide: 1024 });
    const kept = planTiles(slide, mask, { tileSize: 256, mpp: 0.5, minTissue: 0.5 });
    // Tiles are 512 level-0 px; the disc has r = 900 at (1024, 1024).
    const inside = (x: number, y: number) => (x - 1024) ** 2 + (y - 1024) ** 2 <= 900 ** 2;
    for (const t of kept.tiles) {
      expect(t.tissue).toBeGreaterThanOrEqual(0.5);
      expect(Math.hypot(t.x + 256 - 1024, t.y + 256 - 1024)).toBeLessThan(900 + 362);
    }
    const all = planTiles(slide, undefined, { tileSize: 256, mpp: 0.5 }).tiles;
    const fullyInside = all.filter((t) =>
      [
        [0, 0],
        [512, 0],
        [0, 512],
        [512, 512],
      ].every(([dx, dy]) => inside(t.x + dx, t.y + dy)),
    );
    expect(fullyInside.length).toBeGreaterThan(0);
    for (const t of fullyInside) expect(kept.tiles.some((k) => k.x === t.x && k.y === t.y)).toBe(true);
  });

  it('refuses a slide without mpp unless given, and upsampling', () => {
    const noMpp = createInMemorySlide({ width: 1000, height: 1000, pixel: tissueDiscs([]) });
    expect(() => planTiles(noMpp, undefined, { tileSize: 256, mpp: 0.5 })).toThrow(/--slide-mpp/);
    expect(planTiles(noMpp, undefined, { tileSize: 256, mpp: 0.5, slideMpp: 0.5 }).tiles).toHaveLength(9);
    expect(() => planTiles(slide, undefined, { tileSize: 256, mpp: 0.1 })).toThrow(/does not upsample/);
  });
});

describe('tissue detection on synthetic slides, against their label masks', () => {
  const dir = tempDir();

  // Dense grade-5 slides on the bright scanner: with Otsu's cut alone, some of these came out with no
  // tissue at all (nuclei against the rest), and in the demo they silently left the evaluation. Rendered
  // once for both methods.
  let rendering: Promise<SynthSlide[]> | undefined;
  const denseSlides = () =>
    (rendering ??= (async () => {
      const [base] = designSlides({ task: 'prostate', slides: 1, out: dir, size: 1024, sites: 1, anomalies: 0, seed: 5 });
      const slides: SynthSlide[] = [];
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const id = `g5-${seed}`;
        const s = {
          ...base,
          id,
          primary: 5,
          secondary: 5,
          grade: 5,
          seed: `tissue/${seed}`,
          site: 'site-B',
          scanner: 'warm-bright',
          path: `slides/${id}.tiff`,
          maskPath: `masks/${id}_mask.tiff`,
        } as SynthSlide;
        await renderSlide(s, dir);
        slides.push(s);
      }
      return slides;
    })());
  it.each(['saturation', 'od'] as const)(
    'finds the tissue of dense high-grade slides on a bright scanner (%s)',
    async (method) => {
      const ious: number[] = [];
      for (const rendered of await denseSlides()) {
        const slide = await openSlide(`${dir}/${rendered.path}`);
        const truth = await openSlide(`${dir}/${rendered.maskPath}`);
        const { width, height } = slide.levels[0];
        const labels = await truth.readRegion(0, 0, 0, width, height);
        const mask = await detectTissue(slide, { method });
        ious.push(tissueIoU(mask, labels).iou);
        await slide.close();
        await truth.close();
      }
      expect(Math.min(...ious), ious.map((v) => v.toFixed(3)).join(' ')).toBeGreaterThan(0.85);
    },
    120_000,
  );
});
