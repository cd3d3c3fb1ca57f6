import { z } from 'zod';
import { createImage, type RgbImage, type Rng } from '../core/index.ts';
import { OD_LUT } from './colourSpaces.ts';
import { blurField } from './filters.ts';
import { defineTransform } from './transform.ts';

/**
 * Slide-preparation artifacts drawn on a tile. Random shapes are drawn from the rng in a fixed order
 * whatever the severity, and severity only adds shapes or widens them: with one seed, severity 3
 * contains severity 2's damage and more, so similarity to the clean tile falls monotonically.
 */

type Point = [number, number];

/** A smooth random curve across the tile: a cubic Bezier from one edge region to another, as points. */
function randomCurve(w: number, h: number, rng: Rng, segments = 40): Point[] {
  const p = Array.from({ length: 4 }, () => [rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h] as Point);
  return Array.from({ length: segments + 1 }, (_, i) => {
    const t = i / segments;
    const u = 1 - t;
    return [0, 1].map((k) => u * u * u * p[0][k] + 3 * u * u * t * p[1][k] + 3 * u * t * t * p[2][k] + t * t * t * p[3][k]) as Point;
  });
}

/** Coverage (0..1, anti-aliased) of a polyline stroke of the given width, per pixel; the maximum over segments. */
export function strokeCoverage(w: number, h: number, pts: Point[], width: number, into: Float32Array, offsetX = 0, offsetY = 0): void {
  const half = width / 2;
  for (let s = 0; s < pts.length - 1; s++) {
    const ax = pts[s][0] - offsetX;
    const ay = pts[s][1] - offsetY;
    const bx = pts[s + 1][0] - offsetX;
    const by = pts[s + 1][1] - offsetY;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - half - 1));
    const x1 = Math.min(w - 1, Math.ceil(Math.max(ax, bx) + half + 1));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - half - 1));
    const y1 = Math.min(h - 1, Math.ceil(Math.max(ay, by) + half + 1));
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy || 1e-9;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
        const d = Math.hypot(x - ax - t * dx, y - ay - t * dy);
        const c = Math.max(0, Math.min(1, half + 0.5 - d));
        const i = y * w + x;
        if (c > into[i]) into[i] = c;
      }
    }
  }
}

/** Multiplies (as light through ink) by a colour's transmittance where coverage > 0. */
function absorb(img: RgbImage, coverage: Float32Array, transmittance: readonly number[], opacity: number): RgbImage {
  const out = createImage(img.width, img.height, 0);
  for (let i = 0, p = 0; i < img.data.length; i += 3, p++) {
    const a = coverage[p] * opacity;
    for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(img.data[i + c] * (1 - a + a * transmittance[c]));
  }
  return out;
}

const INKS: Record<string, number[]> = {
  green: [0.25, 0.6, 0.35],
  blue: [0.2, 0.3, 0.75],
  black: [0.12, 0.12, 0.14],
  red: [0.8, 0.2, 0.25],
};

defineTransform({
  name: 'pen-marks',
  kind: 'artifact',
  description: 'Marker ink strokes (green, blue, black or red) across the tile: count strokes of width pixels',
  schema: z.object({
    count: z.number().int().min(1).max(20).default(1),
    width: z.number().min(1).max(64).default(3),
    opacity: z.number().min(0).max(1).default(0.75),
  }),
  severities: [
    [1, 3],
    [1, 6],
    [2, 8],
    [2, 12],
    [3, 16],
  ].map(([count, width]) => ({ count, width })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const ink = INKS[Object.keys(INKS)[rng.int(4)]];
    const cov = new Float32Array(img.width * img.height);
    // Always draw the maximum number of curves from the rng, so fewer strokes are a prefix.
    const curves = Array.from({ length: 20 }, () => randomCurve(img.width, img.height, rng));
    for (let k = 0; k < p.count; k++) strokeCoverage(img.width, img.height, curves[k], p.width, cov);
    return absorb(img, cov, ink, p.opacity);
  },
});

defineTransform({
  name: 'threads',
  kind: 'artifact',
  description: 'Thin dark fibres (lint, threads) lying on the section: count curves of width pixels',
  schema: z.object({ count: z.number().int().min(1).max(20).default(1), width: z.number().min(0.5).max(8).default(1) }),
  severities: [
    [1, 1],
    [1, 1.5],
    [2, 2],
    [3, 2.5],
    [4, 3],
  ].map(([count, width]) => ({ count, width })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const cov = new Float32Array(img.width * img.height);
    const curves = Array.from({ length: 20 }, () => randomCurve(img.width, img.height, rng, 60));
    for (let k = 0; k < p.count; k++) strokeCoverage(img.width, img.height, curves[k], p.width, cov);
    return absorb(img, cov, [0.3, 0.28, 0.25], 0.85);
  },
});

defineTransform({
  name: 'dark-spots',
  kind: 'artifact',
  description: 'Dust and debris: count dark blobs of 1-4 pixel radius',
  schema: z.object({ count: z.number().int().min(1).max(500).default(3) }),
  severities: [3, 8, 16, 30, 50].map((count) => ({ count })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const cov = new Float32Array(img.width * img.height);
    const blobs = Array.from({ length: 500 }, () => ({
      x: rng.uniform(0, img.width),
      y: rng.uniform(0, img.height),
      r: rng.uniform(1, 4),
    }));
    for (const b of blobs.slice(0, p.count))
      strokeCoverage(
        img.width,
        img.height,
        [
          [b.x, b.y],
          [b.x + 0.01, b.y],
        ],
        2 * b.r,
        cov,
      );
    return absorb(img, cov, [0.18, 0.17, 0.16], 0.9);
  },
});

defineTransform({
  name: 'air-bubbles',
  kind: 'artifact',
  description:
    'Air trapped under the coverslip: circles of radius (fraction of the tile) with a dark refractive rim and a washed-out interior',
  schema: z.object({ count: z.number().int().min(1).max(10).default(1), radius: z.number().min(0.02).max(1).default(0.12) }),
  severities: [
    [1, 0.12],
    [1, 0.2],
    [1, 0.3],
    [2, 0.35],
    [2, 0.45],
  ].map(([count, radius]) => ({ count, radius })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const { width: w, height: h } = img;
    const centres = Array.from({ length: 10 }, () => [rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h]);
    const out = createImage(w, h, 0);
    out.data.set(img.data);
    const r = p.radius * Math.min(w, h);
    const rim = Math.max(1.5, r * 0.08);
    for (const [cx, cy] of centres.slice(0, p.count)) {
      for (let y = Math.max(0, Math.floor(cy - r - rim)); y < Math.min(h, Math.ceil(cy + r + rim)); y++) {
        for (let x = Math.max(0, Math.floor(cx - r - rim)); x < Math.min(w, Math.ceil(cx + r + rim)); x++) {
          const d = Math.hypot(x - cx, y - cy);
          const i = (y * w + x) * 3;
          if (d < r - rim) {
            // Inside: tissue seen through air and glass, lighter and greyer.
            const g = (out.data[i] + out.data[i + 1] + out.data[i + 2]) / 3;
            for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(0.5 * out.data[i + c] + 0.2 * g + 0.3 * 250);
          } else if (d < r + rim) {
            const a = 1 - Math.abs(d - r) / rim;
            for (let c = 0; c < 3; c++) out.data[i + c] = Math.round(out.data[i + c] * (1 - 0.75 * a));
          }
        }
      }
    }
    return out;
  },
});

/** Smooth random field in [-1, 1] with features of about `scale` pixels. */
function smoothField(w: number, h: number, scale: number, rng: Rng): Float32Array {
  const f = new Float32Array(w * h);
  for (let i = 0; i < f.length; i++) f[i] = rng.uniform(-1, 1);
  const s = blurField(f, w, h, scale);
  let m = 1e-9;
  for (const v of s) m = Math.max(m, Math.abs(v));
  for (let i = 0; i < s.length; i++) s[i] /= m;
  return s;
}

/** Scales optical density per pixel by factor[p] (thicker tissue absorbs more). */
function scaleOd(img: RgbImage, factor: Float32Array): RgbImage {
  const out = createImage(img.width, img.height, 0);
  for (let i = 0, p = 0; i < img.data.length; i += 3, p++) {
    for (let c = 0; c < 3; c++) {
      const v = 255 * Math.exp(-OD_LUT[img.data[i + c]] * factor[p] * Math.LN10);
      out.data[i + c] = v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

defineTransform({
  name: 'tissue-fold',
  kind: 'artifact',
  description: 'A fold: a band of doubled-over tissue where optical density is multiplied by odFactor, width a fraction of the tile',
  schema: z.object({ width: z.number().min(0.01).max(1).default(0.08), odFactor: z.number().min(1).max(5).default(1.6) }),
  severities: [
    [0.08, 1.6],
    [0.12, 1.8],
    [0.18, 2.0],
    [0.25, 2.2],
    [0.33, 2.5],
  ].map(([width, odFactor]) => ({ width, odFactor })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const { width: w, height: h } = img;
    const angle = rng.uniform(0, Math.PI);
    const offset = rng.uniform(-0.25, 0.25) * Math.min(w, h);
    const nx = Math.cos(angle);
    const ny = Math.sin(angle);
    const half = (p.width * Math.min(w, h)) / 2;
    const factor = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const d = Math.abs((x - w / 2) * nx + (y - h / 2) * ny - offset);
        const a = Math.max(0, Math.min(1, half + 1 - d));
        factor[y * w + x] = 1 + a * (p.odFactor - 1);
      }
    }
    return scaleOd(img, factor);
  },
});

defineTransform({
  name: 'uneven-thickness',
  kind: 'artifact',
  description: 'Section thickness varying across the tile: optical density scaled by 1 + amount x a smooth random field',
  schema: z.object({ amount: z.number().min(0).max(0.95).default(0.15), scale: z.number().min(2).max(200).default(24) }),
  severities: [0.15, 0.25, 0.35, 0.5, 0.65].map((amount) => ({ amount })),
  make: (p) => (img: RgbImage, rng: Rng) => {
    const field = smoothField(img.width, img.height, p.scale, rng);
    for (let i = 0; i < field.length; i++) field[i] = 1 + p.amount * field[i];
    return scaleOd(img, field);
  },
});
