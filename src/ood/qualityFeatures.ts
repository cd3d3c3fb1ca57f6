import { HED_FROM_OD, OD_LUT } from '../augment/index.ts';
import { selectKth, type RgbImage } from '../core/index.ts';

/** Slide-quality features of a tile, in this order (qualityFeatures computes them from pixels; the qc-* detectors in quality.ts read them). */
export const QUALITY_FEATURES = [
  'sharpness', // log(1 + variance of the Laplacian of grey)
  'ink_share', // tissue pixels of a hue H&E does not give (green, blue), near-black, or over-saturated (red)
  'dark_share', // tissue pixels darker than value 0.35 (folds, bubble rims, ink)
  'saturation', // mean saturation of tissue
  'od_mean', // mean optical density (R+G+B) of tissue
  'od_p95', // its 95th percentile
  'edge_share', // pixels with a strong Sobel gradient (rims, fold edges, ink strokes)
  'h_od', // mean haematoxylin concentration of tissue (Ruifrok & Johnston)
  'e_od', // mean eosin concentration
  'glass_share', // pixels that are glass
] as const;
export const QUALITY_DIM = QUALITY_FEATURES.length;

/** Whether any of these detectors reads the tiles' pixel-quality features (the qc-* family). */
export const needsQuality = (names: Iterable<string>) => [...names].some((n) => n.startsWith('qc-'));

/** Scratch buffers reused across tiles (a suite scores tens of thousands). */
let scratchGrey = new Float32Array(0);
let scratchOd = new Float64Array(0);

const [HE0, HE1, HE2] = [0, 1, 2].map((c) => [HED_FROM_OD[c][0], HED_FROM_OD[c][1]]);
/** Edge threshold on the Sobel magnitude, squared (60 grey levels on each of the 4-weight taps). */
const EDGE2 = (60 * 4) ** 2;

/**
 * Slide-quality features of a tile (QUALITY_FEATURES above), as quality-control tools measure them
 * (HistoQC, GrandQC): focus, ink colour, darkness and saturation, edges, stain amounts and glass.
 */
export function qualityFeatures(img: RgbImage, out = new Float32Array(QUALITY_DIM)): Float32Array {
  const { width: w, height: h, data } = img;
  const n = w * h;
  if (scratchGrey.length < n) {
    scratchGrey = new Float32Array(n);
    scratchOd = new Float64Array(n);
  }
  const grey = scratchGrey;
  const ods = scratchOd;
  let tissue = 0;
  let ink = 0;
  let dark = 0;
  let sat = 0;
  let od = 0;
  let hSum = 0;
  let eSum = 0;
  for (let p = 0; p < n; p++) {
    const r = data[p * 3];
    const g = data[p * 3 + 1];
    const b = data[p * 3 + 2];
    grey[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    const odR = OD_LUT[r];
    const odG = OD_LUT[g];
    const odB = OD_LUT[b];
    const o = odR + odG + odB;
    if (o < 0.15) continue;
    ods[tissue++] = Math.fround(o);
    // HSV as rgbToHsv computes it, the hue only where a rule needs it.
    const mx = r > g ? (r > b ? r : b) : g > b ? g : b;
    const mn = r < g ? (r < b ? r : b) : g < b ? g : b;
    const d = mx - mn;
    const s = mx === 0 ? 0 : d / mx;
    const v = mx / 255;
    // Marker ink: green (no stain is), blue more saturated than haematoxylin (whose hue, about 247
    // degrees, is blue too), near-black, or a saturation no stain reaches (red ink).
    if (v < 0.2 || s > 0.75) ink++;
    else if (s > 0.2) {
      let hue = 0;
      if (d > 0) {
        if (mx === r) hue = ((g - b) / d + 6) % 6;
        else if (mx === g) hue = (b - r) / d + 2;
        else hue = (r - g) / d + 4;
        hue = (hue / 6) * 360;
      }
      if ((hue > 70 && hue < 200) || (s > 0.6 && hue >= 200 && hue < 260)) ink++;
    }
    if (v < 0.35) dark++;
    sat += s;
    od += o;
    // Haematoxylin and eosin as rgbToHed computes them (float32, as it stores them).
    hSum += Math.fround(odR * HE0[0] + odG * HE1[0] + odB * HE2[0]);
    eSum += Math.fround(odR * HE0[1] + odG * HE1[1] + odB * HE2[1]);
  }
  let lapSum = 0;
  let lapSq = 0;
  let lapN = 0;
  let edges = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const p = y * w + x;
      const lap = grey[p - 1] + grey[p + 1] + grey[p - w] + grey[p + w] - 4 * grey[p];
      lapSum += lap;
      lapSq += lap * lap;
      lapN++;
      const gx = grey[p - w + 1] + 2 * grey[p + 1] + grey[p + w + 1] - grey[p - w - 1] - 2 * grey[p - 1] - grey[p + w - 1];
      const gy = grey[p + w - 1] + 2 * grey[p + w] + grey[p + w + 1] - grey[p - w - 1] - 2 * grey[p - w] - grey[p - w + 1];
      if (gx * gx + gy * gy > EDGE2) edges++;
    }
  }
  const lapVar = lapN ? lapSq / lapN - (lapSum / lapN) ** 2 : 0;
  const t = Math.max(1, tissue);
  out[0] = Math.log1p(Math.max(0, lapVar));
  out[1] = ink / t;
  out[2] = dark / t;
  out[3] = sat / t;
  out[4] = od / t;
  out[5] = tissue ? selectKth(ods.subarray(0, tissue), Math.floor(0.95 * (tissue - 1))) : 0;
  out[6] = edges / Math.max(1, lapN);
  out[7] = hSum / t;
  out[8] = eSum / t;
  out[9] = 1 - tissue / n;
  return out;
}

/** Quality features of images in memory (perturbed tiles of a robustness suite, a site audit). */
export function imagesQuality(images: readonly RgbImage[]): Float32Array {
  const out = new Float32Array(images.length * QUALITY_DIM);
  images.forEach((img, j) => qualityFeatures(img, out.subarray(j * QUALITY_DIM, (j + 1) * QUALITY_DIM)));
  return out;
}
