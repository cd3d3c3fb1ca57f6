import type { RgbImage } from '../core/index.ts';
import type { SlideSource } from './slide.ts';
import { readThumbnail } from './thumbnail.ts';

export type TissueMethod = 'saturation' | 'od';

export interface TissueMask {
  readonly width: number;
  readonly height: number;
  /** 1 = tissue, 0 = background, row-major. */
  readonly data: Uint8Array;
  /** Level-0 pixels per mask pixel. */
  readonly downsample: number;
  readonly method: TissueMethod;
  readonly threshold: number;
  /** Summed-area table ((w+1) x (h+1)) for O(1) tissue fractions. */
  readonly integral: Float64Array;
}

export interface TissueOptions {
  method?: TissueMethod;
  /** Long side of the low-resolution view the mask is computed on. */
  maxSide?: number;
  /** Objects smaller than this many level-0 square microns (or mask pixels without mpp) are removed. */
  minObjectArea?: number;
  /** Background holes smaller than this are filled. */
  minHoleArea?: number;
}

/** Otsu's threshold on a 256-bin histogram: the cut maximising between-class variance. */
export function otsuThreshold(hist: ArrayLike<number>): number {
  let total = 0;
  let sum = 0;
  for (let i = 0; i < hist.length; i++) {
    total += hist[i];
    sum += i * hist[i];
  }
  let wB = 0;
  let sumB = 0;
  let best = 0;
  let bestVar = -1;
  for (let t = 0; t < hist.length; t++) {
    wB += hist[t];
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * hist[t];
    const mB = sumB / wB;
    const mF = (sum - sumB) / wF;
    const v = wB * wF * (mB - mF) * (mB - mF);
    if (v > bestVar) {
      bestVar = v;
      best = t;
    }
  }
  return best;
}

const TWO_POPULATIONS = 0.75;

/** Otsu's separability (between-class over total variance) of splitting hist[0..end) at t. */
function separability(hist: ArrayLike<number>, end: number, t: number): number {
  let n = 0;
  let sum = 0;
  let sq = 0;
  let n0 = 0;
  let s0 = 0;
  for (let i = 0; i < end; i++) {
    n += hist[i];
    sum += i * hist[i];
    sq += i * i * hist[i];
    if (i <= t) {
      n0 += hist[i];
      s0 += i * hist[i];
    }
  }
  const total = sq / n - (sum / n) ** 2;
  if (n0 === 0 || n0 === n || total <= 0) return 0;
  const m0 = s0 / n0;
  const m1 = (sum - s0) / (n - n0);
  return ((n0 / n) * ((n - n0) / n) * (m1 - m0) ** 2) / total;
}

/**
 * The background/tissue cut. Otsu alone splits the strongest contrast, which on densely cellular tissue
 * is nuclei against everything else (background and stroma together): whole high-grade slides then
 * lose their tissue. So the class below Otsu's cut is split again, and when that split separates it
 * better than any split of a uniform spread can (separability 0.75; one Gaussian split in two gives
 * 2/pi = 0.64) it holds two populations, glass and tissue, and the lower cut is the background's edge.
 * On the demo's 306 synthetic slides against their label masks: mean IoU 0.925 -> 0.965 (saturation),
 * and no slide left without tissue (5 before, all dense high-grade slides on the warm-bright scanner).
 */
export function tissueThreshold(hist: ArrayLike<number>, floor: number): number {
  const t = otsuThreshold(hist);
  const lower = Array.from({ length: t + 1 }, (_, i) => hist[i]);
  const t2 = otsuThreshold(lower);
  const cut = t2 > 0 && separability(lower, t + 1, t2) >= TWO_POPULATIONS ? t2 : t;
  return Math.max(cut, floor);
}

/** Per-pixel tissue evidence scaled to 0..255: HSV saturation, or summed optical density. */
export function tissueScore(img: RgbImage, method: TissueMethod): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const r = d[i * 3];
    const g = d[i * 3 + 1];
    const b = d[i * 3 + 2];
    if (method === 'saturation') {
      const mx = Math.max(r, g, b);
      const mn = Math.min(r, g, b);
      out[i] = mx === 0 ? 0 : Math.round((255 * (mx - mn)) / mx);
    } else {
      const od = (v: number) => -Math.log10(Math.max(v, 1) / 255);
      // Summed OD of three channels rarely exceeds 3 on tissue; 85 per unit maps it to 0..255.
      out[i] = Math.min(255, Math.round((od(r) + od(g) + od(b)) * 85));
    }
  }
  return out;
}

/**
 * Connected components (8-connectivity) of pixels equal to `value`; components smaller than minArea
 * are flipped. With touchBorderKeeps, components touching the image border are kept whatever their
 * size (the outside background is not a hole).
 */
export function removeSmallComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  value: 0 | 1,
  minArea: number,
  touchBorderKeeps = false,
): void {
  if (minArea <= 1) return;
  // Typed arrays for the fill's stack and the component: boxed number[] pushes were 60% of tiling a slide.
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  const comp = new Int32Array(mask.length);
  for (let start = 0; start < mask.length; start++) {
    if (seen[start] || mask[start] !== value) continue;
    let top = 0;
    let size = 0;
    stack[top++] = start;
    seen[start] = 1;
    let border = false;
    while (top) {
      const p = stack[--top];
      comp[size++] = p;
      const x = p % width;
      const y = (p - x) / width;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) border = true;
      const y0 = y > 0 ? y - 1 : 0;
      const y1 = y < height - 1 ? y + 1 : y;
      const x0 = x > 0 ? x - 1 : 0;
      const x1 = x < width - 1 ? x + 1 : x;
      for (let ny = y0; ny <= y1; ny++) {
        for (let q = ny * width + x0, end = ny * width + x1; q <= end; q++) {
          if (!seen[q] && mask[q] === value) {
            seen[q] = 1;
            stack[top++] = q;
          }
        }
      }
    }
    if (size < minArea && !(touchBorderKeeps && border)) {
      const flipped = value === 1 ? 0 : 1;
      for (let i = 0; i < size; i++) mask[comp[i]] = flipped;
    }
  }
}

function integralOf(data: Uint8Array, width: number, height: number): Float64Array {
  const W = width + 1;
  const s = new Float64Array(W * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      row += data[y * width + x];
      s[(y + 1) * W + x + 1] = s[y * W + x + 1] + row;
    }
  }
  return s;
}

export function maskFromImage(img: RgbImage, downsample: number, options: TissueOptions & { mpp?: number } = {}): TissueMask {
  const method = options.method ?? 'saturation';
  const score = tissueScore(img, method);
  const hist = new Float64Array(256);
  for (const v of score) hist[v]++;
  // A floor keeps an all-background slide (glass, dust) from being split in two by Otsu. For optical
  // density it is 0.14 summed over the channels: clean glass is below 0.1, and pale stroma on a bright
  // scanner is 0.25-0.35: with the earlier floor of 0.29, 11 of the 306 demo slides still came out empty.
  const floor = method === 'saturation' ? 20 : 12;
  const threshold = tissueThreshold(hist, floor);
  const data = new Uint8Array(score.length);
  for (let i = 0; i < score.length; i++) data[i] = score[i] > threshold ? 1 : 0;
  // Areas are given in square microns at level 0; convert to mask pixels.
  const umPerMaskPx = options.mpp ? options.mpp * downsample : undefined;
  const toPx = (um2: number) => (umPerMaskPx ? um2 / (umPerMaskPx * umPerMaskPx) : um2);
  const minObject = toPx(options.minObjectArea ?? (umPerMaskPx ? 10_000 : 16));
  const minHole = toPx(options.minHoleArea ?? (umPerMaskPx ? 5_000 : 8));
  removeSmallComponents(data, img.width, img.height, 1, Math.round(minObject));
  removeSmallComponents(data, img.width, img.height, 0, Math.round(minHole), true);
  return { width: img.width, height: img.height, data, downsample, method, threshold, integral: integralOf(data, img.width, img.height) };
}

/** Tissue mask of a slide computed on a low-resolution view (Otsu + small-object removal). */
export async function detectTissue(slide: SlideSource, options: TissueOptions = {}): Promise<TissueMask> {
  const { image, downsample } = await readThumbnail(slide, options.maxSide ?? 2048);
  return maskFromImage(image, downsample, { ...options, mpp: slide.mpp });
}

/** Share of tissue in a level-0 rectangle (area-weighted over the mask pixels it covers). */
export function tissueFraction(mask: TissueMask, x: number, y: number, w: number, h: number): number {
  const d = mask.downsample;
  const fx0 = Math.max(0, x / d);
  const fy0 = Math.max(0, y / d);
  const fx1 = Math.min(mask.width, (x + w) / d);
  const fy1 = Math.min(mask.height, (y + h) / d);
  const area = (w / d) * (h / d);
  if (fx1 <= fx0 || fy1 <= fy0 || area <= 0) return 0;
  // Integer mask-pixel bounds, then fractional edge weights via the integral image's bilinear reading.
  const S = mask.integral;
  const W = mask.width + 1;
  const at = (px: number, py: number): number => {
    const ix = Math.floor(px);
    const iy = Math.floor(py);
    const tx = px - ix;
    const ty = py - iy;
    const v = (xx: number, yy: number) => S[Math.min(yy, mask.height) * W + Math.min(xx, mask.width)];
    // Sum over [0,px) x [0,py): exact for the area-weighted mask, since the mask is constant per pixel.
    const a = v(ix, iy);
    const b = v(ix + 1, iy);
    const c = v(ix, iy + 1);
    const e = v(ix + 1, iy + 1);
    return a + (b - a) * tx + (c - a) * ty + (e - b - c + a) * tx * ty;
  };
  const sum = at(fx1, fy1) - at(fx0, fy1) - at(fx1, fy0) + at(fx0, fy0);
  return Math.max(0, Math.min(1, sum / area));
}

/** IoU of a tissue mask with a level-0 label image's tissue (label > 0 in its first channel). */
export function tissueIoU(mask: TissueMask, labels: RgbImage): { iou: number; found: number } {
  let inter = 0;
  let union = 0;
  let found = 0;
  for (let y = 0; y < labels.height; y++)
    for (let x = 0; x < labels.width; x++) {
      const a =
        mask.data[
          Math.min(mask.height - 1, Math.floor(y / mask.downsample)) * mask.width +
            Math.min(mask.width - 1, Math.floor(x / mask.downsample))
        ];
      const b = labels.data[(y * labels.width + x) * 3] > 0 ? 1 : 0;
      inter += a & b;
      union += a | b;
      found += a;
    }
  return { iou: union ? inter / union : 1, found };
}
