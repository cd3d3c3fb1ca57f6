import type { RgbImage } from '../core/index.ts';

/** Pixels of a batch, NHWC: floats in [0, 1] (a TileBatch) or bytes with scale 1 / 255. */
export interface PixelBatch {
  readonly n: number;
  readonly height: number;
  readonly width: number;
  readonly data: Float32Array | Uint8Array;
}

export interface InputLayout {
  /** Square input size the network takes. */
  size: number;
  /** NCHW (PyTorch, gradelab's model.onnx) or NHWC (TensorFlow exports). */
  layout: 'NCHW' | 'NHWC';
  /** (x - mean) / std per channel on RGB in [0, 1]; omitted when the graph normalises itself. */
  mean?: readonly number[];
  std?: readonly number[];
}

/** Source rows or columns and weights of TF.js's resizeBilinear(alignCorners = true) along one axis. */
function axisTaps(from: number, to: number): { lo: Int32Array; hi: Int32Array; frac: Float32Array } {
  const scale = to > 1 ? (from - 1) / (to - 1) : 0;
  const lo = new Int32Array(to);
  const hi = new Int32Array(to);
  const frac = new Float32Array(to);
  for (let i = 0; i < to; i++) {
    const f = i * scale;
    lo[i] = Math.floor(f);
    hi[i] = Math.min(from - 1, lo[i] + 1);
    frac[i] = f - lo[i];
  }
  return { lo, hi, frac };
}

/**
 * A tile batch (NHWC in [0, 1]) as a network's input tensor: bilinearly resized to the input size with
 * TF.js's resizeBilinear(alignCorners = true) sampling, so both engines see the same pixels, then
 * normalised and laid out as the network wants, in one pass. Row and column taps are tabulated once per
 * batch and the three channels are unrolled: this runs on every tile that inference sees.
 */
export function prepareInput(batch: PixelBatch, to: InputLayout, scale = 1): Float32Array {
  const { n, height: h, width: w, data } = batch;
  const s = to.size;
  const out = new Float32Array(n * 3 * s * s);
  // (v scale - mean) / std as v a - b per channel.
  const mean = to.mean ?? [0, 0, 0];
  const [a0, a1, a2] = (to.std ?? [1, 1, 1]).map((v) => scale / v);
  const [b0, b1, b2] = (to.std ?? [1, 1, 1]).map((v, c) => mean[c] / v);
  const rows = axisTaps(h, s);
  const cols = axisTaps(w, s);
  const plane = s * s;
  const nchw = to.layout === 'NCHW';
  // Output channel c of pixel p lands at base + c * cStride + p * pStride.
  const cStride = nchw ? plane : 1;
  const pStride = nchw ? 1 : 3;
  for (let b = 0; b < n; b++) {
    const src = b * h * w * 3;
    const base = b * 3 * plane;
    for (let y = 0; y < s; y++) {
      const r0 = src + rows.lo[y] * w * 3;
      const r1 = src + rows.hi[y] * w * 3;
      const dy = rows.frac[y];
      for (let x = 0; x < s; x++) {
        const a = cols.lo[x] * 3;
        const c = cols.hi[x] * 3;
        const dx = cols.frac[x];
        const o = base + (y * s + x) * pStride;
        let t = data[r0 + a] + (data[r0 + c] - data[r0 + a]) * dx;
        let u = data[r1 + a] + (data[r1 + c] - data[r1 + a]) * dx;
        out[o] = (t + (u - t) * dy) * a0 - b0;
        t = data[r0 + a + 1] + (data[r0 + c + 1] - data[r0 + a + 1]) * dx;
        u = data[r1 + a + 1] + (data[r1 + c + 1] - data[r1 + a + 1]) * dx;
        out[o + cStride] = (t + (u - t) * dy) * a1 - b1;
        t = data[r0 + a + 2] + (data[r0 + c + 2] - data[r0 + a + 2]) * dx;
        u = data[r1 + a + 2] + (data[r1 + c + 2] - data[r1 + a + 2]) * dx;
        out[o + 2 * cStride] = (t + (u - t) * dy) * a2 - b2;
      }
    }
  }
  return out;
}

/** Same-size 8-bit images straight to a network's input (no intermediate float batch). */
export function prepareImages(images: readonly RgbImage[], to: InputLayout): Float32Array {
  const { width, height } = images[0];
  const per = width * height * 3;
  const data = new Uint8Array(images.length * per);
  images.forEach((img, i) => data.set(img.data, i * per));
  return prepareInput({ n: images.length, width, height, data }, to, 1 / 255);
}

export function inputDims(n: number, to: InputLayout): number[] {
  return to.layout === 'NCHW' ? [n, 3, to.size, to.size] : [n, to.size, to.size, 3];
}
