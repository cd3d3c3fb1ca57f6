import type { Rng } from '../core/index.ts';

/** A closed polygon as interleaved x, y (level-0 pixels). */
export type Polygon = Float32Array;

/** A blob: radius r modulated by a few random harmonics (irregularity 0 = circle). */
export function blobPolygon(cx: number, cy: number, r: number, irregularity: number, rng: Rng, vertices = 28): Polygon {
  const harmonics = [2, 3, 5, 7].map((k) => ({ k, a: (rng.uniform(-1, 1) * irregularity) / Math.sqrt(k), p: rng.uniform(0, 2 * Math.PI) }));
  const poly = new Float32Array(vertices * 2);
  for (let i = 0; i < vertices; i++) {
    const t = (i / vertices) * 2 * Math.PI;
    let rr = 1;
    for (const h of harmonics) rr += h.a * Math.sin(h.k * t + h.p);
    rr = Math.max(0.35, rr) * r;
    poly[i * 2] = cx + rr * Math.cos(t);
    poly[i * 2 + 1] = cy + rr * Math.sin(t);
  }
  return poly;
}

/** The polygon shrunk toward its centroid by `by` pixels (approximately: radially). */
export function shrinkPolygon(poly: Polygon, by: number): Polygon {
  let cx = 0;
  let cy = 0;
  const n = poly.length / 2;
  for (let i = 0; i < n; i++) {
    cx += poly[i * 2];
    cy += poly[i * 2 + 1];
  }
  cx /= n;
  cy /= n;
  const out = new Float32Array(poly.length);
  for (let i = 0; i < n; i++) {
    const dx = poly[i * 2] - cx;
    const dy = poly[i * 2 + 1] - cy;
    const d = Math.hypot(dx, dy) || 1;
    const k = Math.max(0.05, (d - by) / d);
    out[i * 2] = cx + dx * k;
    out[i * 2 + 1] = cy + dy * k;
  }
  return out;
}

export function bbox(poly: Polygon): [number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < poly.length; i += 2) {
    x0 = Math.min(x0, poly[i]);
    x1 = Math.max(x1, poly[i]);
    y0 = Math.min(y0, poly[i + 1]);
    y1 = Math.max(y1, poly[i + 1]);
  }
  return [x0, y0, x1, y1];
}

/** Points along a polygon's outline every `spacing` pixels, with the local outward normal. */
export function pointsAlong(poly: Polygon, spacing: number): { x: number; y: number; nx: number; ny: number }[] {
  const n = poly.length / 2;
  const out: { x: number; y: number; nx: number; ny: number }[] = [];
  let carry = 0;
  for (let i = 0; i < n; i++) {
    const ax = poly[i * 2];
    const ay = poly[i * 2 + 1];
    const bx = poly[((i + 1) % n) * 2];
    const by = poly[((i + 1) % n) * 2 + 1];
    const len = Math.hypot(bx - ax, by - ay);
    if (len === 0) continue;
    let t = carry;
    while (t < len) {
      const f = t / len;
      // Outward normal for a counter-clockwise polygon in image coordinates (y down): (dy, -dx).
      out.push({ x: ax + (bx - ax) * f, y: ay + (by - ay) * f, nx: (by - ay) / len, ny: -(bx - ax) / len });
      t += spacing;
    }
    carry = t - len;
  }
  return out;
}

/**
 * Scanline fill of a polygon clipped to a rectangle: calls span(y, x0, x1) for each run of pixel
 * centres inside (even-odd rule), in rectangle-relative coordinates.
 */
export function fillPolygon(
  poly: Polygon,
  rx: number,
  ry: number,
  rw: number,
  rh: number,
  span: (y: number, x0: number, x1: number) => void,
): void {
  const [bx0, by0, bx1, by1] = bbox(poly);
  const yStart = Math.max(0, Math.ceil(by0 - ry - 0.5));
  const yEnd = Math.min(rh - 1, Math.floor(by1 - ry - 0.5));
  if (yEnd < yStart || bx1 < rx || bx0 > rx + rw) return;
  const n = poly.length / 2;
  const xs: number[] = [];
  for (let y = yStart; y <= yEnd; y++) {
    const py = ry + y + 0.5;
    xs.length = 0;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = poly[i * 2 + 1];
      const yj = poly[j * 2 + 1];
      if (yi > py !== yj > py) xs.push(poly[i * 2] + ((py - yi) / (yj - yi)) * (poly[j * 2] - poly[i * 2]));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const x0 = Math.max(0, Math.ceil(xs[k] - rx - 0.5));
      const x1 = Math.min(rw - 1, Math.floor(xs[k + 1] - rx - 0.5));
      if (x1 >= x0) span(y, x0, x1);
    }
  }
}

export function pointInPolygon(poly: Polygon, x: number, y: number): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const yi = poly[i * 2 + 1];
    const yj = poly[j * 2 + 1];
    if (yi > y !== yj > y && x < poly[i * 2] + ((y - yi) / (yj - yi)) * (poly[j * 2] - poly[i * 2])) inside = !inside;
  }
  return inside;
}

/** Area of a simple polygon (shoelace formula). */
export function polygonArea(poly: Polygon): number {
  let a = 0;
  for (let i = 0; i < poly.length; i += 2) {
    const j = (i + 2) % poly.length;
    a += poly[i] * poly[j + 1] - poly[j] * poly[i + 1];
  }
  return Math.abs(a) / 2;
}
