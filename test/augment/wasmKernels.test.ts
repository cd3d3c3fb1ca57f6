import { missingTool } from '../helpers.ts';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  blurRgb,
  gaussianBlur,
  jpegQuantTable,
  jpegRoundTrip,
  jpegRoundTripSimulated,
  transformFromSpec,
} from '../../src/augment/index.ts';
import { blurField, gaussianKernel } from '../../src/augment/filters.ts';
import { createRng, type RgbImage } from '../../src/core/index.ts';
import { psnr, stainedTile } from './tiles.ts';

function noiseTile(w: number, h: number, seed: string): RgbImage {
  const rng = createRng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)) };
}

describe('blurRgb (WebAssembly)', () => {
  it('equals the float64 separable reference per channel to rounding, on odd sizes too', () => {
    for (const [w, h, sigma] of [
      [37, 21, 1],
      [64, 48, 2.5],
      [5, 3, 1.2],
      [1, 1, 1],
    ] as const) {
      const img = noiseTile(w, h, `b${w}`);
      const out = blurRgb(img, sigma);
      for (let c = 0; c < 3; c++) {
        const field = Float32Array.from({ length: w * h }, (_, i) => img.data[i * 3 + c]);
        const ref = blurField(field, w, h, sigma);
        for (let i = 0; i < w * h; i++) expect(Math.abs(out.data[i * 3 + c] - ref[i])).toBeLessThanOrEqual(0.5 + 1e-3);
      }
    }
  });
  it('keeps a flat image flat, preserves the mean of a wrapped-free pattern and leaves its input alone', () => {
    const flat = { width: 20, height: 11, data: new Uint8Array(20 * 11 * 3).fill(173) };
    expect(blurRgb(flat, 3).data.every((v) => v === 173)).toBe(true);
    const img = noiseTile(48, 48, 'mean');
    const before = img.data.slice();
    const out = blurRgb(img, 1);
    expect(img.data).toEqual(before);
    const mean = (d: Uint8Array) => d.reduce((a, v) => a + v, 0) / d.length;
    expect(Math.abs(mean(out.data) - mean(img.data))).toBeLessThan(1);
  });
  it('uses the kernel truncated at 3 sigma (gaussianKernel): a single bright pixel spreads as its taps', () => {
    const img = { width: 15, height: 15, data: new Uint8Array(15 * 15 * 3) };
    img.data.fill(255, (7 * 15 + 7) * 3, (7 * 15 + 7) * 3 + 3);
    const out = blurRgb(img, 1);
    const k = gaussianKernel(1);
    // Centre row: 255 k[3] k[i]; the pixel 4 away (outside radius 3) stays 0.
    for (let i = 0; i < 7; i++) expect(out.data[(7 * 15 + 4 + i) * 3]).toBe(Math.round(255 * k[3] * k[i]));
    expect(out.data[(7 * 15 + 3) * 3]).toBe(0);
  });
});

describe('gaussianBlur above 4 MP (libvips, same kernel truncation)', () => {
  it('agrees with the WebAssembly blur to a grey level', async () => {
    const w = 2100;
    const h = 2100;
    const rng = createRng('big');
    const img = { width: w, height: h, data: new Uint8Array(w * h * 3) };
    // Smooth content with some texture, so that rounding, not the kernel, is all that can differ.
    for (let i = 0; i < w * h; i++)
      img.data.fill(128 + Math.round(100 * Math.sin((i % w) / 9) * Math.cos(Math.floor(i / w) / 13)) + rng.int(8), i * 3, i * 3 + 3);
    const big = await gaussianBlur(img, 2);
    const wasm = blurRgb(img, 2);
    let worst = 0;
    for (let i = 0; i < big.data.length; i++) worst = Math.max(worst, Math.abs(big.data[i] - wasm.data[i]));
    expect(worst).toBeLessThanOrEqual(1);
    expect(big.data).not.toEqual(img.data);
  });
});

describe('simulated JPEG (libjpeg lossy stages in WebAssembly)', () => {
  it('quantisation tables follow the IJG quality scaling', () => {
    const base = [16, 11, 10, 16, 24, 40, 51, 61];
    expect(Array.from(jpegQuantTable(base, 50))).toEqual(base);
    expect(Array.from(jpegQuantTable(base, 100))).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // quality 25: scale 5000/25 = 200%, quality 80: 40%, (b * s + 50) / 100 floored, clamped to 1..255.
    expect(Array.from(jpegQuantTable(base, 25))).toEqual([32, 22, 20, 32, 48, 80, 102, 122]);
    expect(Array.from(jpegQuantTable(base, 80))).toEqual([6, 4, 4, 6, 10, 16, 20, 24]);
    expect(Array.from(jpegQuantTable([200], 1))).toEqual([255]);
  });
  it('stays above 45 dB PSNR against a real libjpeg round trip, far closer than JPEG is to the original', async () => {
    const tile = stainedTile(128, 5);
    for (const q of [90, 80, 25, 7]) {
      const sim = jpegRoundTripSimulated(tile, q);
      const real = await jpegRoundTrip(tile, q);
      const simVsReal = psnr(sim.data, real.data);
      expect(simVsReal).toBeGreaterThan(45);
      expect(simVsReal).toBeGreaterThan(psnr(real.data, tile.data) + 8);
      expect(Math.abs(psnr(sim.data, tile.data) - psnr(real.data, tile.data))).toBeLessThan(0.5);
    }
  });
  it('handles sizes that are not multiples of 16 like libjpeg (edge replication, fancy upsampling)', async () => {
    for (const [w, h] of [
      [37, 21],
      [17, 9],
      [2, 2],
      [1, 1],
    ] as const) {
      const tile = noiseTile(w, h, `j${w}`);
      const sim = jpegRoundTripSimulated(tile, 60);
      expect([sim.width, sim.height]).toEqual([w, h]);
      if (w > 8) expect(psnr(sim.data, (await jpegRoundTrip(tile, 60)).data)).toBeGreaterThan(40);
    }
  });
  it('loses more with lower quality, deterministically, without touching its input', () => {
    const tile = stainedTile(96, 2);
    const before = tile.data.slice();
    const scores = [95, 50, 25, 10, 3].map((q) => psnr(jpegRoundTripSimulated(tile, q).data, tile.data));
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThan(scores[i - 1]);
    expect(jpegRoundTripSimulated(tile, 30).data).toEqual(jpegRoundTripSimulated(tile, 30).data);
    expect(tile.data).toEqual(before);
  });
  it('the jpeg transform takes codec simulated (default) or libjpeg', async () => {
    const tile = stainedTile(64, 3);
    const rng = createRng(1);
    const sim = await transformFromSpec({ name: 'jpeg', quality: 40 }).apply(tile, rng);
    const real = await transformFromSpec({ name: 'jpeg', quality: 40, codec: 'libjpeg' }).apply(tile, rng);
    expect(sim.data).toEqual(jpegRoundTripSimulated(tile, 40).data);
    expect(real.data).toEqual((await jpegRoundTrip(tile, 40)).data);
    expect(() => transformFromSpec({ name: 'jpeg', codec: 'png' })).toThrow(/codec/);
  });
});

const WASM_DIR = fileURLToPath(new URL('../../src/augment/wasm/', import.meta.url));
const clang = ['/usr/bin/clang-14', '/usr/bin/clang'].find((c) => existsSync(c));
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('the committed kernels.wasm', () => {
  it('is the binary build.sh recorded, built from the kernels.c beside it', () => {
    const stamp = Object.fromEntries(
      readFileSync(join(WASM_DIR, 'kernels.c.sha256'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ').reverse()),
    );
    expect(stamp['kernels.c'], 'kernels.c changed since the build: run src/augment/wasm/build.sh').toBe(sha(join(WASM_DIR, 'kernels.c')));
    expect(stamp['kernels.wasm'], 'kernels.wasm is not the binary build.sh made').toBe(sha(join(WASM_DIR, 'kernels.wasm')));
  });

  // Under CI the compiler is installed by .ci/run: a missing one fails there instead of skipping.
  it.skipIf(missingTool(!!clang))('rebuilds byte for byte from kernels.c (clang-14 and lld-14 installed)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-'));
    try {
      cpSync(join(WASM_DIR, 'kernels.c'), join(dir, 'kernels.c'));
      cpSync(join(WASM_DIR, 'build.sh'), join(dir, 'build.sh'));
      execFileSync('sh', [join(dir, 'build.sh')], { stdio: 'ignore', env: { ...process.env, CC: clang ?? 'clang-14' } });
      expect(sha(join(dir, 'kernels.wasm'))).toBe(sha(join(WASM_DIR, 'kernels.wasm')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
