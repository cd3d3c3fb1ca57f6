import { strokeCoverage } from '../augment/index.ts';
import { createImage, type RgbImage } from '../core/index.ts';
import { fillPolygon } from './geometry.ts';
import { hash2, valueNoise } from './noise.ts';
import { LABEL, NucleusKind, RegionKind, type Scene } from './scene.ts';
import type { SiteProtocol } from './sites.ts';

export interface RenderedRegion {
  rgb: RgbImage;
  /** Mask values per pixel (see LABEL). */
  labels: Uint8Array;
  /** Out-of-focus weight per pixel (0..1) when the slide has a blurred area, else undefined. */
  blur?: Float32Array;
}

const GLASS_OD = 0.012;
const LATTICE = 4;

/** Per-pixel stain amounts of a rectangle of a scene, before any site's stains turn them into light. */
export interface StainConcentrations {
  H: Float32Array;
  E: Float32Array;
  labels: Uint8Array;
  blur?: Float32Array;
  /**
   * On a slide whose look-alike's stains are matched: per look-alike pixel, a value in [0, 1) that
   * orders pixels of like stain amounts for the match (its nucleus's own inside a nucleus), -1 elsewhere.
   */
  jitter?: Float32Array;
}

/**
 * Renders a rectangle of a scene by the Beer-Lambert law: per-pixel haematoxylin and eosin
 * concentrations (stroma texture, epithelium, lumens, nuclei with chromatin texture) become optical
 * density through the site's stain vectors and strengths, and light as 255 x 10^-OD.
 */
export function renderRegion(scene: Scene, site: SiteProtocol, x: number, y: number, w: number, h: number): RenderedRegion {
  const { H, E, labels, blur } = stainConcentrations(scene, x, y, w, h);
  const seed = seedOf(scene.design.seed);
  const rgb = createImage(w, h, 0);
  const hv = site.hVector.map((v) => v * site.hStrength);
  const ev = site.eVector.map((v) => v * site.eStrength);
  for (let p = 0, q = 0; p < w * h; p++, q += 3) {
    const tissue = labels[p] !== LABEL.background;
    const grain = tissue
      ? 0.03 * (hash2(x + (p % w), y + ((p / w) | 0), seed + 23) - 0.5)
      : 0.004 * (hash2(x + (p % w), y + ((p / w) | 0), seed + 29) - 0.5);
    for (let c = 0; c < 3; c++) {
      const od = tissue ? H[p] * hv[c] + E[p] * ev[c] + grain + GLASS_OD : GLASS_OD + grain;
      const v = 255 * Math.exp(-od * Math.LN10);
      rgb.data[q + c] = v >= 255 ? 255 : v <= 0 ? 0 : v + 0.5;
    }
  }

  for (const o of scene.overlays) {
    if (o.kind === 'pen') drawPen(rgb, labels, x, y, o.points!, o.width!, o.ink!);
    else if (o.kind === 'bubble') drawBubble(rgb, labels, x, y, o.cx!, o.cy!, o.r!, scene.u);
  }
  return { rgb, labels, blur };
}

/**
 * Haematoxylin and eosin concentrations and mask values of a rectangle: tissue, regions, nuclei, a
 * near-OOD look-alike's stains matched to the slide's tissue (scene.stainMatch), folds and blur.
 */
export function stainConcentrations(scene: Scene, x: number, y: number, w: number, h: number): StainConcentrations {
  const u = scene.u;
  const seed = seedOf(scene.design.seed);
  const H = new Float32Array(w * h);
  const E = new Float32Array(w * h);
  const labels = new Uint8Array(w * h);
  const jitter = scene.matchesLookAlikeStains ? new Float32Array(w * h).fill(-1) : undefined;

  // Stroma and tissue edge on a coarse lattice, interpolated: texture features are >= 8 um anyway.
  const gw = Math.ceil(w / LATTICE) + 2;
  const gh = Math.ceil(h / LATTICE) + 2;
  const fibre = new Float32Array(gw * gh);
  const edge = new Float32Array(gw * gh);
  for (let j = 0; j < gh; j++) {
    for (let i = 0; i < gw; i++) {
      const px = x + i * LATTICE;
      const py = y + j * LATTICE;
      // Fibres: noise stretched along x, plus finer grain.
      fibre[j * gw + i] = 0.65 * valueNoise(px * 0.35, py * 1.6, 14 * u, seed) + 0.35 * valueNoise(px, py, 5 * u, seed + 7);
      edge[j * gw + i] = valueNoise(px, py, 60 * u, seed + 13) - 0.5;
    }
  }
  const lattice = (grid: Float32Array, i: number, j: number) => {
    const fi = i / LATTICE;
    const fj = j / LATTICE;
    const i0 = fi | 0;
    const j0 = fj | 0;
    const tx = fi - i0;
    const ty = fj - j0;
    const a = grid[j0 * gw + i0];
    const b = grid[j0 * gw + i0 + 1];
    const c = grid[(j0 + 1) * gw + i0];
    const d = grid[(j0 + 1) * gw + i0 + 1];
    return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty;
  };
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const p = j * w + i;
      if (!scene.inTissue(x + i + 0.5, y + j + 0.5, 0.12 * lattice(edge, i, j))) continue;
      labels[p] = LABEL.stroma;
      const f = lattice(fibre, i, j);
      E[p] = 0.13 + 0.22 * f;
      H[p] = 0.02 + 0.02 * f;
    }
  }

  for (const ri of scene.regionsIn(x, y, w, h)) {
    const r = scene.regions[ri];
    fillPolygon(r.poly, x, y, w, h, (row, x0, x1) => {
      for (let i = x0; i <= x1; i++) {
        const p = row * w + i;
        if (labels[p] === LABEL.background) continue;
        switch (r.kind) {
          case RegionKind.Epithelium:
          case RegionKind.Lymphoid:
            H[p] = r.h;
            E[p] = r.e * (0.85 + 0.3 * hash2(x + i, y + row, seed + 3));
            labels[p] = r.label;
            break;
          case RegionKind.Lumen:
            H[p] = 0.01;
            E[p] = 0.025 + 0.02 * hash2(x + i, y + row, seed + 5);
            labels[p] = r.label;
            break;
          case RegionKind.Fat:
            H[p] = 0;
            E[p] = 0.01;
            break;
          case RegionKind.Mucin: {
            const wisp = valueNoise(x + i, y + row, 10 * u, seed + 17);
            H[p] = r.h * (0.6 + 0.8 * wisp);
            E[p] = r.e * (0.6 + 0.8 * wisp);
            labels[p] = r.label;
            break;
          }
          case RegionKind.Muscle: {
            const stripe = 0.5 + 0.5 * Math.sin(((y + row) / u) * 1.2 + 3 * valueNoise(x + i, y + row, 30 * u, seed + 19));
            H[p] = r.h;
            E[p] = r.e * (0.8 + 0.3 * stripe);
            labels[p] = r.label;
            break;
          }
        }
      }
    });
  }

  for (const ni of scene.nucleiIn(x, y, w, h)) {
    const cx = scene.nx[ni] - x;
    const cy = scene.ny[ni] - y;
    const rx = scene.nrx[ni];
    const ry = scene.nry[ni];
    const kind = scene.nkind[ni];
    const hn = scene.nh[ni];
    const cos = Math.cos(scene.nangle[ni]);
    const sin = Math.sin(scene.nangle[ni]);
    const m = Math.max(rx, ry) * (kind === NucleusKind.Mitotic ? 1.5 : 1) + 1;
    const i0 = Math.max(0, Math.floor(cx - m));
    const i1 = Math.min(w - 1, Math.ceil(cx + m));
    const j0 = Math.max(0, Math.floor(cy - m));
    const j1 = Math.min(h - 1, Math.ceil(cy + m));
    for (let j = j0; j <= j1; j++) {
      for (let i = i0; i <= i1; i++) {
        const p = j * w + i;
        if (labels[p] === LABEL.background) continue;
        const dx = i + 0.5 - cx;
        const dy = j + 0.5 - cy;
        const a = (dx * cos + dy * sin) / rx;
        const b = (-dx * sin + dy * cos) / ry;
        let q = Math.sqrt(a * a + b * b);
        if (kind === NucleusKind.Mitotic) q /= 1 + 0.4 * Math.sin(6 * Math.atan2(b, a) + ni);
        // Anti-aliased edge over about one pixel.
        const cover = Math.max(0, Math.min(1, (1 - q) * Math.min(rx, ry) + 0.5));
        if (cover <= 0) continue;
        const texture =
          kind === NucleusKind.Normal
            ? 0.7 + 0.6 * hash2(x + i, y + j, seed + 11)
            : kind === NucleusKind.Mitotic
              ? 0.95 + 0.1 * hash2(x + i, y + j, seed + 11)
              : 0.9 + 0.2 * hash2(x + i, y + j, seed + 11);
        const hv = hn * texture;
        H[p] += (Math.max(H[p], hv) - H[p]) * cover;
        E[p] *= 1 - 0.55 * cover;
        if (jitter && cover > 0.5 && labels[p] === LABEL.anomaly) jitter[p] = hash2(ni, 7, seed + 41);
      }
    }
  }

  scene.stainMatch?.apply({ H, E, labels, jitter }, x, y, w, seed);

  let blur: Float32Array | undefined;
  for (const o of scene.overlays) {
    if (o.kind === 'fold') {
      for (let j = 0; j < h; j++) {
        for (let i = 0; i < w; i++) {
          const p = j * w + i;
          if (labels[p] === LABEL.background) continue;
          const d = Math.abs((x + i - o.cx!) * o.nx! + (y + j - o.cy!) * o.ny!);
          const a = Math.max(0, Math.min(1, o.half! + 1 - d));
          if (a <= 0) continue;
          H[p] *= 1 + a;
          E[p] *= 1 + 0.9 * a;
          labels[p] = LABEL.anomaly;
        }
      }
    } else if (o.kind === 'blur') {
      blur ??= new Float32Array(w * h);
      for (let j = 0; j < h; j++) {
        for (let i = 0; i < w; i++) {
          const d = Math.hypot(x + i - o.cx!, y + j - o.cy!);
          const a = Math.max(0, Math.min(1, (o.r! - d) / (20 * u)));
          if (a <= 0) continue;
          blur[j * w + i] = Math.max(blur[j * w + i], a);
          if (labels[j * w + i] !== LABEL.background) labels[j * w + i] = LABEL.anomaly;
        }
      }
    }
  }

  return { H, E, labels, blur, jitter };
}

function drawPen(rgb: RgbImage, labels: Uint8Array, x: number, y: number, pts: Float32Array, width: number, ink: readonly number[]): void {
  const { width: w, height: h } = rgb;
  const cover = new Float32Array(w * h);
  const points: [number, number][] = [];
  for (let i = 0; i + 1 < pts.length; i += 2) points.push([pts[i], pts[i + 1]]);
  strokeCoverage(w, h, points, width, cover, x, y);
  for (let p = 0; p < cover.length; p++) {
    const a = cover[p] * 0.8;
    if (a <= 0) continue;
    for (let c = 0; c < 3; c++) rgb.data[p * 3 + c] = rgb.data[p * 3 + c] * (1 - a + a * ink[c]) + 0.5;
    if (labels[p] !== LABEL.background) labels[p] = LABEL.anomaly;
  }
}

function drawBubble(rgb: RgbImage, labels: Uint8Array, x: number, y: number, cx: number, cy: number, r: number, u: number): void {
  const { width: w, height: h } = rgb;
  const rim = Math.max(3, 6 * u);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const d = Math.hypot(x + i - cx, y + j - cy);
      if (d > r + rim) continue;
      const p = j * w + i;
      const q = p * 3;
      if (d < r - rim) {
        const g = (rgb.data[q] + rgb.data[q + 1] + rgb.data[q + 2]) / 3;
        for (let c = 0; c < 3; c++) rgb.data[q + c] = 0.55 * rgb.data[q + c] + 0.15 * g + 0.3 * 250;
      } else {
        const a = 1 - Math.abs(d - r) / rim;
        for (let c = 0; c < 3; c++) rgb.data[q + c] = rgb.data[q + c] * (1 - 0.7 * a);
      }
      if (labels[p] !== LABEL.background) labels[p] = LABEL.anomaly;
    }
  }
}

export function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h | 0;
}
