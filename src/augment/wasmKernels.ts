import { readFileSync } from 'node:fs';
import { createImage, type RgbImage } from '../core/index.ts';
import { gaussianKernel } from './filters.ts';

/**
 * The WebAssembly build of wasm/kernels.c (128-bit SIMD; rebuild with wasm/build.sh). Compiled once
 * per thread on first use; each call copies the tile into linear memory, runs, copies the result out.
 * At 256 px a blur takes a quarter and a JPEG round trip a fourth of the time libvips takes through
 * sharp, whose per-call pipeline set-up dominates at that size.
 */
interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  blur_rgb(src: number, dst: number, tmp: number, line: number, w: number, h: number, k: number, r: number): void;
  jpeg_round_trip(
    src: number,
    dst: number,
    w: number,
    h: number,
    yp: number,
    cbp: number,
    crp: number,
    rows: number,
    divY: number,
    mulY: number,
    divC: number,
    mulC: number,
  ): void;
}

let instance: Exports | undefined;

function kernels(): Exports {
  if (!instance) {
    const bytes = readFileSync(new URL('./wasm/kernels.wasm', import.meta.url));
    instance = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Exports;
  }
  return instance;
}

/** Carves 16-byte aligned buffers out of linear memory after the module's own data, growing it. */
function reserve(k: Exports, sizes: number[]): number[] {
  let at = ((k.__heap_base.value as number) + 15) & ~15;
  const offsets = sizes.map((s) => {
    const o = at;
    at = (at + s + 15) & ~15;
    return o;
  });
  const need = at - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  return offsets;
}

/**
 * Runs a kernel on an image: the image goes to the first reserved buffer, the result is read from the
 * second (both w x h x 3 bytes); `sizes` are the bytes of the kernel's other buffers.
 */
function runOnImage(img: RgbImage, sizes: number[], run: (k: Exports, src: number, dst: number, rest: number[]) => void): RgbImage {
  const k = kernels();
  const n = img.width * img.height * 3;
  const [src, dst, ...rest] = reserve(k, [n, n, ...sizes]);
  new Uint8Array(k.memory.buffer, src, n).set(img.data);
  run(k, src, dst, rest);
  const out = createImage(img.width, img.height, 0);
  // memory.buffer is read again: growing linear memory replaces it.
  out.data.set(new Uint8Array(k.memory.buffer, dst, n));
  return out;
}

/**
 * Gaussian blur of an RGB image with the kernel of gaussianKernel(sigma) (radius ceil(3 sigma)),
 * edges replicated, float arithmetic, rounded to bytes.
 */
export function blurRgb(img: RgbImage, sigma: number): RgbImage {
  const { width: w, height: h } = img;
  const taps = gaussianKernel(sigma);
  const r = (taps.length - 1) / 2;
  return runOnImage(img, [w * h * 3 * 4, (w + 2 * r) * 3 * 4, taps.length * 4], (k, src, dst, [tmp, line, kern]) => {
    new Float32Array(k.memory.buffer, kern, taps.length).set(taps);
    k.blur_rgb(src, dst, tmp, line, w, h, kern, r);
  });
}

/** JPEG Annex K tables (natural order): luminance, then chrominance. */
const BASE_LUMA = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22,
  37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_CORNER = [17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99];
const BASE_CHROMA = Array.from({ length: 64 }, (_, i) => (i >> 3 < 4 && (i & 7) < 4 ? CHROMA_CORNER[(i >> 3) * 4 + (i & 7)] : 99));

/** The IJG quality scaling (jcparam.c jpeg_quality_scaling + jpeg_add_quant_table, baseline). */
export function jpegQuantTable(base: readonly number[], quality: number): Float32Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - q * 2;
  return Float32Array.from(base, (b) => Math.min(255, Math.max(1, Math.floor((b * scale + 50) / 100))));
}

const AAN = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

/**
 * The quantisation and dequantisation multipliers kernels.c wants: scaled for its AAN DCT, laid out
 * transposed (entry v * 8 + u holds coefficient (u, v)).
 */
function aanTables(q: Float32Array): { div: Float32Array; mul: Float32Array } {
  const div = new Float32Array(64);
  const mul = new Float32Array(64);
  for (let u = 0; u < 8; u++) {
    for (let v = 0; v < 8; v++) {
      const s = AAN[u] * AAN[v];
      div[v * 8 + u] = 1 / (8 * s * q[u * 8 + v]);
      mul[v * 8 + u] = (q[u * 8 + v] * s) / 8;
    }
  }
  return { div, mul };
}

/**
 * The lossy part of a baseline JPEG round trip at the given quality, as libjpeg does it with 4:2:0
 * chroma sampling (see kernels.c). No bitstream is produced: entropy coding loses nothing.
 */
export function jpegRoundTripSimulated(img: RgbImage, quality: number): RgbImage {
  const { width: w, height: h } = img;
  const pw = (w + 15) & ~15;
  const ph = (h + 15) & ~15;
  const luma = aanTables(jpegQuantTable(BASE_LUMA, quality));
  const chroma = aanTables(jpegQuantTable(BASE_CHROMA, quality));
  const tables = [luma.div, luma.mul, chroma.div, chroma.mul];
  // Y plane, Cb and Cr planes (floats), int scratch (see kernels.c), the four 64-entry tables.
  return runOnImage(
    img,
    [pw * ph * 4, pw * ph, pw * ph, (2 * pw * ph + 3 * (pw + 4)) * 4, 256, 256, 256, 256],
    (k, src, dst, [yp, cbp, crp, scratch, ...at]) => {
      tables.forEach((t, i) => new Float32Array(k.memory.buffer, at[i], 64).set(t));
      k.jpeg_round_trip(src, dst, w, h, yp, cbp, crp, scratch, at[0], at[1], at[2], at[3]);
    },
  );
}
