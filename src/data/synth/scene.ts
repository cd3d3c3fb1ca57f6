import { createRng, type Rng } from '../../core/index.ts';
import { bbox, blobPolygon, pointInPolygon, pointsAlong, polygonArea, shrinkPolygon, type Polygon } from './geometry.ts';

export type AnomalyKind = 'lymphoid' | 'mucinous' | 'foreign-tissue' | 'pen-mark' | 'air-bubble' | 'tissue-fold' | 'out-of-focus';
/** Near-OOD: tumour look-alikes. Far-OOD: artifacts and tissue of another kind. */
export const NEAR_OOD: readonly AnomalyKind[] = ['lymphoid', 'mucinous'];
export const FAR_OOD: readonly AnomalyKind[] = ['foreign-tissue', 'pen-mark', 'air-bubble', 'tissue-fold', 'out-of-focus'];
export const ANOMALY_KINDS: readonly AnomalyKind[] = [...NEAR_OOD, ...FAR_OOD];

/** Mask values: PANDA Radboud's for prostate (0 background, 1 stroma, 2 benign, 3-5 Gleason); 2 = tumour for breast; 6 = anomaly. */
export const LABEL = { background: 0, stroma: 1, benign: 2, tumour: 2, anomaly: 6 } as const;

export const RegionKind = { Epithelium: 0, Lumen: 1, Mucin: 2, Fat: 3, Muscle: 4, Lymphoid: 5 } as const;
export type RegionKind = (typeof RegionKind)[keyof typeof RegionKind];

export const NucleusKind = { Normal: 0, Mitotic: 1, Stromal: 2, Lymphocyte: 3 } as const;
export type NucleusKind = (typeof NucleusKind)[keyof typeof NucleusKind];

export interface Region {
  poly: Polygon;
  kind: RegionKind;
  /** Mask value; lumens keep their gland's. */
  label: number;
  /** Cytoplasm stain concentrations (H, E) for epithelium. */
  h: number;
  e: number;
  box: [number, number, number, number];
}

export interface SlideDesign {
  id: string;
  task: 'prostate' | 'breast';
  width: number;
  height: number;
  mpp: number;
  seed: string;
  /** Prostate: Gleason primary and secondary (0+0 benign). */
  primary?: number;
  secondary?: number;
  /** Breast: Nottingham component scores 1-3. */
  tubules?: number;
  pleomorphism?: number;
  mitoses?: number;
  anomaly: AnomalyKind | '';
}

interface Capsule {
  ax: number;
  ay: number;
  bx: number;
  by: number;
  r: number;
}

export interface Overlay {
  kind: 'pen' | 'bubble' | 'fold' | 'blur';
  /** pen: polyline points; bubble: circle; fold: band (point, normal, half width); blur: circle. */
  points?: Float32Array;
  width?: number;
  ink?: [number, number, number];
  cx?: number;
  cy?: number;
  r?: number;
  nx?: number;
  ny?: number;
  half?: number;
}

const CELL = 256;

/** Everything to render a slide: tissue outline, regions, nuclei (struct of arrays) and overlays. */
export class Scene {
  readonly regions: Region[] = [];
  nx: number[] = [];
  ny: number[] = [];
  nrx: number[] = [];
  nry: number[] = [];
  nangle: number[] = [];
  nh: number[] = [];
  nkind: number[] = [];
  readonly overlays: Overlay[] = [];
  readonly capsules: Capsule[] = [];
  /** The anomaly area for region anomalies (circle), if any. */
  anomalyArea?: { cx: number; cy: number; r: number; poly: Polygon };
  private regionIndex = new Map<number, number[]>();
  private nucleusIndex = new Map<number, number[]>();
  readonly u: number;

  constructor(readonly design: SlideDesign) {
    this.u = 1 / design.mpp;
  }

  inTissue(x: number, y: number, edgeNoise = 0): boolean {
    for (const c of this.capsules) {
      const dx = c.bx - c.ax;
      const dy = c.by - c.ay;
      const t = Math.max(0, Math.min(1, ((x - c.ax) * dx + (y - c.ay) * dy) / (dx * dx + dy * dy || 1)));
      const d = Math.hypot(x - c.ax - t * dx, y - c.ay - t * dy);
      if (d < c.r * (1 + edgeNoise)) return true;
    }
    return false;
  }

  addNucleus(x: number, y: number, rx: number, ry: number, angle: number, h: number, kind: NucleusKind): void {
    this.nx.push(x);
    this.ny.push(y);
    this.nrx.push(rx);
    this.nry.push(ry);
    this.nangle.push(angle);
    this.nh.push(h);
    this.nkind.push(kind);
  }

  addRegion(poly: Polygon, kind: RegionKind, label: number, h = 0, e = 0): Region {
    const r = { poly, kind, label, h, e, box: bbox(poly) };
    this.regions.push(r);
    return r;
  }

  /**
   * Scales an epithelium region about its centroid (0 < f < 1) with what lies in it: lumens of its label
   * move in with it, nuclei outside the shrunken outline go. Used to keep a small slide's patterns in
   * the proportions its label states.
   */
  shrinkRegion(index: number, f: number): void {
    const region = this.regions[index];
    const poly = region.poly;
    let cx = 0;
    let cy = 0;
    for (let i = 0; i < poly.length; i += 2) {
      cx += poly[i];
      cy += poly[i + 1];
    }
    cx /= poly.length / 2;
    cy /= poly.length / 2;
    const scale = (pl: Polygon) => Float32Array.from(pl, (v, i) => (i % 2 ? cy + (v - cy) * f : cx + (v - cx) * f));
    const inside = (x: number, y: number) => pointInPolygon(poly, x, y);
    for (const r of this.regions) {
      if (r === region || (r.kind === RegionKind.Lumen && r.label === region.label && inside(r.box[0] / 2 + r.box[2] / 2, r.box[1] / 2 + r.box[3] / 2))) {
        r.poly = scale(r.poly);
        r.box = bbox(r.poly);
      }
    }
    const keep = this.nx.map((x, i) => !inside(x, this.ny[i]) || pointInPolygon(region.poly, x, this.ny[i]));
    for (const key of ['nx', 'ny', 'nrx', 'nry', 'nangle', 'nh', 'nkind'] as const) this[key] = this[key].filter((_, i) => keep[i]);
  }

  /** Builds the spatial index; call once when the scene is complete. */
  index(): void {
    const put = (map: Map<number, number[]>, i: number, x0: number, y0: number, x1: number, y1: number) => {
      const cols = Math.ceil(this.design.width / CELL) + 1;
      for (let cy = Math.max(0, Math.floor(y0 / CELL)); cy <= Math.floor(y1 / CELL); cy++) {
        for (let cx = Math.max(0, Math.floor(x0 / CELL)); cx <= Math.floor(x1 / CELL); cx++) {
          const k = cy * cols + cx;
          const list = map.get(k);
          if (list) list.push(i);
          else map.set(k, [i]);
        }
      }
    };
    this.regions.forEach((r, i) => put(this.regionIndex, i, r.box[0], r.box[1], r.box[2], r.box[3]));
    for (let i = 0; i < this.nx.length; i++) {
      const m = Math.max(this.nrx[i], this.nry[i]) * 1.6;
      put(this.nucleusIndex, i, this.nx[i] - m, this.ny[i] - m, this.nx[i] + m, this.ny[i] + m);
    }
  }

  private query(map: Map<number, number[]>, x: number, y: number, w: number, h: number): number[] {
    const cols = Math.ceil(this.design.width / CELL) + 1;
    const seen = new Set<number>();
    for (let cy = Math.max(0, Math.floor(y / CELL)); cy <= Math.floor((y + h) / CELL); cy++) {
      for (let cx = Math.max(0, Math.floor(x / CELL)); cx <= Math.floor((x + w) / CELL); cx++) {
        for (const i of map.get(cy * cols + cx) ?? []) seen.add(i);
      }
    }
    return [...seen].sort((a, b) => a - b);
  }

  regionsIn(x: number, y: number, w: number, h: number): number[] {
    return this.query(this.regionIndex, x, y, w, h);
  }

  nucleiIn(x: number, y: number, w: number, h: number): number[] {
    return this.query(this.nucleusIndex, x, y, w, h);
  }
}

/** Circles already placed, for non-overlapping placement. */
class Occupancy {
  private cells = new Map<string, { x: number; y: number; r: number }[]>();
  constructor(private readonly cell: number) {}
  private key(x: number, y: number) {
    return `${Math.floor(x / this.cell)},${Math.floor(y / this.cell)}`;
  }
  free(x: number, y: number, r: number): boolean {
    const span = Math.ceil((r * 2) / this.cell) + 1;
    const cx = Math.floor(x / this.cell);
    const cy = Math.floor(y / this.cell);
    for (let j = cy - span; j <= cy + span; j++) {
      for (let i = cx - span; i <= cx + span; i++) {
        for (const c of this.cells.get(`${i},${j}`) ?? []) if (Math.hypot(c.x - x, c.y - y) < c.r + r) return false;
      }
    }
    return true;
  }
  add(x: number, y: number, r: number): void {
    const k = this.key(x, y);
    const list = this.cells.get(k);
    if (list) list.push({ x, y, r });
    else this.cells.set(k, [{ x, y, r }]);
  }
}

/** Nuclei filling a polygon on a jittered lattice, skipping holes. */
function fillWithNuclei(scene: Scene, poly: Polygon, holes: Polygon[], spacing: number, size: () => [number, number], h: () => number, rng: Rng, kind: NucleusKind = NucleusKind.Normal): number {
  const [x0, y0, x1, y1] = bbox(poly);
  let n = 0;
  for (let y = y0 + spacing / 2; y < y1; y += spacing * 0.87) {
    const shift = Math.round((y - y0) / (spacing * 0.87)) % 2 ? spacing / 2 : 0;
    for (let x = x0 + shift; x < x1; x += spacing) {
      const px = x + rng.uniform(-0.25, 0.25) * spacing;
      const py = y + rng.uniform(-0.25, 0.25) * spacing;
      if (!pointInPolygon(poly, px, py) || holes.some((hole) => pointInPolygon(hole, px, py))) continue;
      const [rx, ry] = size();
      scene.addNucleus(px, py, rx, ry, rng.uniform(0, Math.PI), h(), kind);
      n++;
    }
  }
  return n;
}

/** A gland: epithelium ring with nuclei along its base, and a lumen. */
function gland(scene: Scene, cx: number, cy: number, radius: number, irregular: number, epi: number, label: number, nucleus: [number, number], hNuc: number, cyto: [number, number], rng: Rng, lumen = true): void {
  const u = scene.u;
  const outer = blobPolygon(cx, cy, radius, irregular, rng);
  scene.addRegion(outer, RegionKind.Epithelium, label, cyto[0], cyto[1]);
  if (lumen) scene.addRegion(shrinkPolygon(outer, epi), RegionKind.Lumen, label);
  for (const p of pointsAlong(outer, nucleus[0] * 2.6)) {
    const inset = epi * 0.4 + rng.uniform(-0.5, 0.5) * u;
    scene.addNucleus(p.x - p.nx * inset, p.y - p.ny * inset, nucleus[0] * rng.uniform(0.9, 1.1), nucleus[1] * rng.uniform(0.9, 1.1), Math.atan2(p.ny, p.nx) + Math.PI / 2, hNuc * rng.uniform(0.9, 1.1), NucleusKind.Normal);
  }
}

function placeIn(scene: Scene, occ: Occupancy, rng: Rng, x0: number, y0: number, size: number, r: number, tries = 12): [number, number] | undefined {
  for (let t = 0; t < tries; t++) {
    const x = x0 + rng.uniform(0, size);
    const y = y0 + rng.uniform(0, size);
    // The centre well inside the tissue; large nests may run into the edge, where rendering clips them.
    const capR = scene.capsules[0]?.r ?? 1;
    if (!scene.inTissue(x, y, -Math.min(0.6, (0.5 * r) / capR)) || !occ.free(x, y, r)) continue;
    const a = scene.anomalyArea;
    if (a && Math.hypot(x - a.cx, y - a.cy) < a.r + r) continue;
    occ.add(x, y, r);
    return [x, y];
  }
  return undefined;
}

/** One patch of a Gleason pattern (or benign) inside a square cell of the slide. */
function prostatePatch(scene: Scene, occ: Occupancy, pattern: number, x0: number, y0: number, size: number, rng: Rng): void {
  const u = scene.u;
  if (pattern === 2) {
    // Benign: large glands with papillary, wavy outlines, wide lumens, small basal nuclei, pale cytoplasm.
    for (let k = 0; k < 6; k++) {
      const r = rng.uniform(40, 80) * u;
      const at = placeIn(scene, occ, rng, x0, y0, size, r + 8 * u, 20);
      if (at) gland(scene, at[0], at[1], r, 0.3, 14 * u, 2, [2.8 * u, 2.1 * u], 0.7, [0.04, 0.12], rng);
    }
  } else if (pattern === 3) {
    // Pattern 3: many small, round, well-formed separate glands with lumens.
    for (let k = 0; k < 22; k++) {
      const r = rng.uniform(14, 30) * u;
      const at = placeIn(scene, occ, rng, x0, y0, size, r + 7 * u);
      if (at) gland(scene, at[0], at[1], r, 0.07, 11 * u, 3, [3.2 * u, 2.6 * u], 0.85, [0.09, 0.2], rng);
    }
  } else if (pattern === 4) {
    // Pattern 4: cribriform nests (epithelium with punched-out lumens) and fused, poorly formed glands.
    const r = rng.uniform(55, 100) * u;
    const at = placeIn(scene, occ, rng, x0, y0, size, r + 6 * u);
    if (at) {
      const nest = blobPolygon(at[0], at[1], r, 0.2, rng);
      scene.addRegion(nest, RegionKind.Epithelium, 4, 0.1, 0.2);
      const holes: Polygon[] = [];
      const n = rng.int(8) + 5;
      for (let k = 0; k < n * 4 && holes.length < n; k++) {
        const a = rng.uniform(0, 2 * Math.PI);
        const d = rng.uniform(0, 0.7) * r;
        const hr = rng.uniform(5, 13) * u;
        const hx = at[0] + d * Math.cos(a);
        const hy = at[1] + d * Math.sin(a);
        if (holes.some((h) => Math.hypot(h[0] - hx, h[1] - hy) < hr * 2.2 + 14 * u)) continue;
        const hole = blobPolygon(hx, hy, hr, 0.1, rng, 14);
        holes.push(hole);
        scene.addRegion(hole, RegionKind.Lumen, 4);
      }
      fillWithNuclei(scene, nest, holes, 11 * u, () => [rng.uniform(3.2, 4.0) * u, rng.uniform(2.6, 3.3) * u], () => rng.uniform(0.8, 1.0), rng);
    }
    for (let k = 0; k < 8; k++) {
      const rr = rng.uniform(15, 28) * u;
      const p = placeIn(scene, occ, rng, x0, y0, size, rr + 3 * u);
      if (p) gland(scene, p[0], p[1], rr, 0.35, rr * 0.8, 4, [3.4 * u, 2.8 * u], 0.9, [0.1, 0.2], rng, rng.next() < 0.4);
    }
  } else {
    // Pattern 5: solid sheets without lumens, and single infiltrating cells.
    const r = rng.uniform(75, 120) * u;
    const at = placeIn(scene, occ, rng, x0, y0, size, r);
    if (at) {
      const sheet = blobPolygon(at[0], at[1], r, 0.35, rng);
      scene.addRegion(sheet, RegionKind.Epithelium, 5, 0.12, 0.2);
      fillWithNuclei(scene, sheet, [], 9.5 * u, () => [rng.uniform(3.4, 4.6) * u, rng.uniform(2.8, 3.8) * u], () => rng.uniform(0.85, 1.1), rng);
    }
    for (let k = 0; k < 30; k++) {
      const p = placeIn(scene, occ, rng, x0, y0, size, 6 * u, 3);
      if (!p) continue;
      const cell = blobPolygon(p[0], p[1], 5.5 * u, 0.15, rng, 10);
      scene.addRegion(cell, RegionKind.Epithelium, 5, 0.12, 0.2);
      scene.addNucleus(p[0], p[1], 3.6 * u, 3.0 * u, rng.uniform(0, Math.PI), 1.0, NucleusKind.Normal);
    }
  }
}

/** Breast carcinoma nests: tubules (with lumens) or solid nests; pleomorphic nuclei; mitoses. */
function breastPatch(scene: Scene, occ: Occupancy, d: SlideDesign, x0: number, y0: number, size: number, rng: Rng): void {
  const u = scene.u;
  const tubuleShare = [0.85, 0.45, 0.04][d.tubules! - 1];
  const meanR = [2.8, 3.8, 5.2][d.pleomorphism! - 1];
  const cv = [0.07, 0.18, 0.32][d.pleomorphism! - 1];
  const ecc = [0.08, 0.18, 0.32][d.pleomorphism! - 1];
  const mitosesPerMm2 = [3, 12, 30][d.mitoses! - 1];
  const nucleus = (): [number, number] => {
    const r = Math.max(1.8, meanR * (1 + cv * rngNormal(rng))) * u;
    const e = 1 - Math.abs(ecc * rngNormal(rng));
    return [r, r * Math.max(0.55, e)];
  };
  for (let k = 0; k < 3; k++) {
    const tubule = rng.next() < tubuleShare;
    const r = (tubule ? rng.uniform(22, 45) : rng.uniform(30, 65)) * u;
    const at = placeIn(scene, occ, rng, x0, y0, size, r + 8 * u);
    if (!at) continue;
    const nest = blobPolygon(at[0], at[1], r, tubule ? 0.12 : 0.28, rng);
    scene.addRegion(nest, RegionKind.Epithelium, LABEL.tumour, 0.09, 0.2);
    const holes = tubule ? [shrinkPolygon(nest, Math.min(r * 0.55, 12 * u))] : [];
    for (const h of holes) scene.addRegion(h, RegionKind.Lumen, LABEL.tumour);
    fillWithNuclei(scene, nest, holes, (meanR * 2.3 + 1.5) * u, nucleus, () => rng.uniform(0.75, 0.95) + 0.08 * (d.pleomorphism! - 1), rng);
    const areaMm2 = (Math.PI * (r / u) ** 2) / 1e6;
    const expected = mitosesPerMm2 * areaMm2;
    let m = Math.floor(expected) + (rng.next() < expected - Math.floor(expected) ? 1 : 0);
    while (m-- > 0) {
      const a = rng.uniform(0, 2 * Math.PI);
      const dd = rng.uniform(0, 0.6) * r;
      const mx = at[0] + dd * Math.cos(a);
      const my = at[1] + dd * Math.sin(a);
      if (holes.some((h) => pointInPolygon(h, mx, my))) continue;
      scene.addNucleus(mx, my, rng.uniform(3.2, 4.6) * u, rng.uniform(2.0, 3.0) * u, rng.uniform(0, Math.PI), 1.7, NucleusKind.Mitotic);
    }
  }
}

function rngNormal(rng: Rng): number {
  return Math.max(-2.5, Math.min(2.5, rng.normal()));
}

function fatLobule(scene: Scene, occ: Occupancy, x0: number, y0: number, size: number, rng: Rng): void {
  const u = scene.u;
  for (let k = 0; k < 12; k++) {
    const r = rng.uniform(22, 38) * u;
    const at = placeIn(scene, occ, rng, x0, y0, size, r + 1.5 * u, 4);
    if (at) scene.addRegion(blobPolygon(at[0], at[1], r, 0.15, rng, 12), RegionKind.Fat, LABEL.stroma);
  }
}

function stromalNuclei(scene: Scene, occ: Occupancy, x0: number, y0: number, size: number, rng: Rng, density: number): void {
  const u = scene.u;
  const n = Math.round(((size / u) * (size / u) * density) / 1e4);
  const a = scene.anomalyArea;
  for (let k = 0; k < n; k++) {
    const x = x0 + rng.uniform(0, size);
    const y = y0 + rng.uniform(0, size);
    if (!scene.inTissue(x, y) || !occ.free(x, y, 3 * u) || (a && Math.hypot(x - a.cx, y - a.cy) < a.r)) continue;
    scene.addNucleus(x, y, rng.uniform(4, 6.5) * u, rng.uniform(1.2, 1.8) * u, rng.uniform(-0.35, 0.35), rng.uniform(0.7, 0.95), NucleusKind.Stromal);
  }
}

function regionAnomaly(scene: Scene, kind: AnomalyKind, rng: Rng): void {
  const a = scene.anomalyArea!;
  const u = scene.u;
  const label = LABEL.anomaly;
  if (kind === 'lymphoid') {
    scene.addRegion(a.poly, RegionKind.Lymphoid, label, 0.06, 0.08);
    fillWithNuclei(scene, a.poly, [], 6.4 * u, () => { const r = rng.uniform(2.5, 3.0) * u; return [r, r * rng.uniform(0.9, 1)]; }, () => rng.uniform(1.0, 1.2), rng, NucleusKind.Lymphocyte);
  } else if (kind === 'mucinous') {
    scene.addRegion(a.poly, RegionKind.Mucin, label, 0.22, 0.07);
    for (let k = 0; k < 60; k++) {
      const ang = rng.uniform(0, 2 * Math.PI);
      const d = Math.sqrt(rng.next()) * a.r * 0.85;
      const cx = a.cx + d * Math.cos(ang);
      const cy = a.cy + d * Math.sin(ang);
      const r = rng.uniform(7, 11) * u;
      // Signet-ring cell: a clear mucin vacuole pushing a crescent nucleus to the rim.
      scene.addRegion(blobPolygon(cx, cy, r, 0.1, rng, 12), RegionKind.Lumen, label);
      const t = rng.uniform(0, 2 * Math.PI);
      scene.addNucleus(cx + Math.cos(t) * r * 0.85, cy + Math.sin(t) * r * 0.85, 4.2 * u, 1.6 * u, t + Math.PI / 2, 1.2, NucleusKind.Normal);
    }
  } else {
    // Foreign tissue: skeletal muscle, dense eosinophilic fibres with peripheral elongated nuclei.
    scene.addRegion(a.poly, RegionKind.Muscle, label, 0.03, 0.6);
    for (let k = 0; k < Math.round((a.r / u) ** 2 / 220); k++) {
      const ang = rng.uniform(0, 2 * Math.PI);
      const d = Math.sqrt(rng.next()) * a.r;
      scene.addNucleus(a.cx + d * Math.cos(ang), a.cy + d * Math.sin(ang), rng.uniform(4.5, 6) * u, 1.6 * u, rng.uniform(-0.1, 0.1), 0.9, NucleusKind.Stromal);
    }
  }
}

function overlayAnomaly(scene: Scene, kind: AnomalyKind, rng: Rng): void {
  const u = scene.u;
  const c = scene.capsules[rng.int(scene.capsules.length)];
  const along = rng.uniform(0.2, 0.8);
  const cx = c.ax + (c.bx - c.ax) * along;
  const cy = c.ay + (c.by - c.ay) * along;
  if (kind === 'pen-mark') {
    const pts: number[] = [];
    const p = [0, 1, 2, 3].map((i) => [cx + rng.uniform(-1, 1) * c.r * 3 + (i - 1.5) * c.r * 1.2, cy + rng.uniform(-1.5, 1.5) * c.r]);
    for (let i = 0; i <= 40; i++) {
      const t = i / 40;
      const w = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3];
      pts.push(w.reduce((s, wi, k) => s + wi * p[k][0], 0), w.reduce((s, wi, k) => s + wi * p[k][1], 0));
    }
    const inks: [number, number, number][] = [[0.25, 0.6, 0.35], [0.2, 0.3, 0.75], [0.12, 0.12, 0.14]];
    scene.overlays.push({ kind: 'pen', points: Float32Array.from(pts), width: rng.uniform(60, 120) * u, ink: inks[rng.int(inks.length)] });
  } else if (kind === 'air-bubble') {
    for (let k = 0; k < 1 + rng.int(2); k++) {
      scene.overlays.push({ kind: 'bubble', cx: cx + rng.uniform(-1, 1) * c.r, cy: cy + rng.uniform(-0.5, 0.5) * c.r, r: rng.uniform(0.5, 0.9) * c.r });
    }
  } else if (kind === 'tissue-fold') {
    const ang = rng.uniform(Math.PI / 3, (2 * Math.PI) / 3);
    scene.overlays.push({ kind: 'fold', cx, cy, nx: Math.cos(ang), ny: Math.sin(ang), half: rng.uniform(40, 100) * u });
  } else {
    scene.overlays.push({ kind: 'blur', cx, cy, r: c.r * rng.uniform(0.8, 1.2) });
  }
}

/** Builds a slide's scene from its design, deterministically from design.seed. */
export function buildScene(design: SlideDesign): Scene {
  const scene = new Scene(design);
  const rng = createRng(design.seed);
  const { width: W, height: H } = design;
  const u = scene.u;
  // Tissue: one or two needle cores (prostate) or one broad excision piece (breast).
  if (design.task === 'prostate') {
    const cores = H > W * 0.4 && rng.next() < 0.5 ? 2 : 1;
    for (let k = 0; k < cores; k++) {
      const cyk = (H * (k + 0.5)) / cores + rng.uniform(-0.05, 0.05) * H;
      const r = Math.min(H / cores, W) * rng.uniform(0.3, 0.38);
      scene.capsules.push({ ax: W * rng.uniform(0.08, 0.15) + r, ay: cyk + rng.uniform(-0.05, 0.05) * H, bx: W * rng.uniform(0.85, 0.92) - r, by: cyk + rng.uniform(-0.05, 0.05) * H, r });
    }
  } else {
    const r = Math.min(W, H) * 0.38;
    scene.capsules.push({ ax: W / 2 - (W / 2 - r) * 0.7, ay: H / 2, bx: W / 2 + (W / 2 - r) * 0.7, by: H / 2, r });
  }
  if (design.anomaly && ['lymphoid', 'mucinous', 'foreign-tissue'].includes(design.anomaly)) {
    const c = scene.capsules[0];
    const t = rng.uniform(0.2, 0.8);
    const cx = c.ax + (c.bx - c.ax) * t;
    const cy = c.ay + (c.by - c.ay) * t;
    const r = c.r * rng.uniform(0.7, 0.95);
    scene.anomalyArea = { cx, cy, r, poly: blobPolygon(cx, cy, r, 0.15, rng) };
  }

  // Patches of ~250 um (smaller on small slides, so every pattern a slide's label names finds room); the
  // pattern of each follows a smooth noise ranking, so patterns form regions.
  const phases = Array.from({ length: 4 }, () => rng.uniform(0, 2 * Math.PI));
  let cell = 250 * u;
  let cells = tissueCells(scene, cell, phases);
  while (cells.length < 8 && cell > 90 * u) {
    cell *= 0.8;
    cells = tissueCells(scene, cell, phases);
  }
  const occ = new Occupancy(40 * u);
  const ranked = cells.slice().sort((p, q) => p.v - q.v);
  const patterns = assignPatterns(design, ranked.length);
  const secondary = design.task === 'prostate' && design.primary && design.secondary !== design.primary ? design.secondary : undefined;
  ranked.forEach((c, i) => {
    let p = patterns[i];
    // The secondary pattern stops growing once it has its share of the tumour area: the primary
    // pattern stays the more extensive one, as the Gleason score says.
    if (p === secondary) {
      const a = epitheliumAreas(scene);
      const sArea = a.get(secondary) ?? 0;
      if (sArea > 0 && sArea >= ((1 - PRIMARY_SHARE) / PRIMARY_SHARE) * (a.get(design.primary!) ?? 0)) p = 0;
    }
    const r = rng.fork(`cell-${Math.round(c.x)}-${Math.round(c.y)}`);
    if (design.task === 'breast') {
      if (p === 1) breastPatch(scene, occ, design, c.x, c.y, cell, r);
      else if (p === 7) fatLobule(scene, occ, c.x, c.y, cell, r);
    } else if (p > 0) {
      prostatePatch(scene, occ, p, c.x, c.y, cell, r);
    }
    stromalNuclei(scene, occ, c.x, c.y, cell, r, 5);
  });
  if (design.task === 'prostate' && design.primary) ensureGleasonAreas(scene, occ, ranked, patterns, cell, rng.fork('gleason-areas'));
  if (design.anomaly) {
    const r = rng.fork('anomaly');
    if (scene.anomalyArea) regionAnomaly(scene, design.anomaly, r);
    else overlayAnomaly(scene, design.anomaly, r);
  }
  scene.index();
  return scene;
}

/** Epithelium area per mask label (polygon areas; lumens count with their gland, as in the mask). */
export function epitheliumAreas(scene: Scene): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of scene.regions) if (r.kind === RegionKind.Epithelium) out.set(r.label, (out.get(r.label) ?? 0) + polygonArea(r.poly));
  return out;
}

/**
 * Makes the labels true on every slide: the primary pattern present and more extensive than the
 * secondary, the secondary present. Placement can fail where tissue is small or crowded, so patches of
 * the missing pattern are added, stroma cells first, until the areas agree (or 60 tries).
 */
function ensureGleasonAreas(scene: Scene, occ: Occupancy, ranked: { x: number; y: number }[], patterns: number[], cell: number, rng: Rng): void {
  const p = scene.design.primary!;
  const s = scene.design.secondary ?? p;
  const order = [...ranked.filter((_, i) => patterns[i] === 0 || patterns[i] === 2), ...ranked];
  for (let k = 0; k < 60; k++) {
    const a = epitheliumAreas(scene);
    const ap = a.get(p) ?? 0;
    const as = a.get(s) ?? 0;
    const need = !ap ? p : s !== p && !as ? s : s !== p && ap <= as ? p : undefined;
    if (need === undefined) return;
    if (need === p && ap > 0 && k >= 20) {
      // No room left for more primary glands (thin tissue): shrink the largest secondary region instead.
      const target = ((1 - PRIMARY_SHARE) / PRIMARY_SHARE) * ap;
      const regions = scene.regions.map((r, i) => ({ r, i, a: r.kind === RegionKind.Epithelium && r.label === s ? polygonArea(r.poly) : 0 })).filter((x) => x.a > 0).sort((x, y) => y.a - x.a);
      const largest = regions[0];
      scene.shrinkRegion(largest.i, Math.sqrt(Math.max(0.05, (largest.a - (as - target)) / largest.a)));
      continue;
    }
    const c = order[k % order.length];
    // A missing secondary pattern on crowded tissue is drawn over what is there (a fresh occupancy map).
    prostatePatch(scene, need === s && k >= 20 ? new Occupancy(40 * scene.u) : occ, need, c.x, c.y, cell, rng.fork(`fix-${k}`));
  }
}

/** Cells of the patch grid that touch tissue, each with its value of the smooth ranking field. */
function tissueCells(scene: Scene, cell: number, phases: number[]): { x: number; y: number; v: number }[] {
  const { width: W, height: H } = scene.design;
  const out: { x: number; y: number; v: number }[] = [];
  const corners = [[0.5, 0.5], [0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9]];
  // The field is in units of 250 um whatever the cell size, so regions keep their extent.
  const unit = 250 * scene.u;
  for (let y = 0; y < H; y += cell) {
    for (let x = 0; x < W; x += cell) {
      if (!corners.some(([fx, fy]) => scene.inTissue(x + fx * cell, y + fy * cell))) continue;
      out.push({ x, y, v: rankingField((x + cell / 2) / unit, (y + cell / 2) / unit, phases) });
    }
  }
  return out;
}

/** Smooth ranking field plus a little jitter, its phases drawn from the slide's own seed. */
function rankingField(x: number, y: number, [a, b, c, d]: number[]): number {
  return Math.sin(x * 0.9 + a) + Math.cos(y * 1.3 + b) + Math.sin((x + y) * 0.5 + c) + 0.3 * Math.sin(x * 7.1 + y * 3.7 + d);
}

/**
 * Epithelium area a patch of each Gleason pattern yields, relative to pattern 3 (measured on full-size
 * patches: pattern 3's small glands cover less than pattern 4's nests or pattern 5's sheets).
 */
const PATCH_AREA: Record<number, number> = { 3: 1, 4: 1.63, 5: 1.6 };
/** Share of the tumour area that is the primary pattern when primary and secondary differ. */
export const PRIMARY_SHARE = 0.65;

/**
 * The pattern of each ranked cell. Graded prostate slides: the first 88% of cells are tumour, split so
 * that the primary pattern covers about 65% of the tumour area and the secondary 35% (by the patches'
 * relative areas), each at least one cell; then benign glands, then stroma. Benign slides: half benign
 * glands, half stroma. Breast: tumour, fat, stroma.
 */
function assignPatterns(design: SlideDesign, n: number): number[] {
  if (design.task === 'breast') return Array.from({ length: n }, (_, i) => (i < 0.6 * n ? 1 : i < 0.8 * n ? 7 : 0));
  if (!design.primary) return Array.from({ length: n }, (_, i) => (i < 0.5 * n ? 2 : 0));
  const p = design.primary;
  const s = design.secondary ?? p;
  const tumour = Math.max(1, Math.round(0.88 * n));
  let primary = tumour;
  if (s !== p && tumour >= 2) {
    const wp = PRIMARY_SHARE / PATCH_AREA[p];
    const ws = (1 - PRIMARY_SHARE) / PATCH_AREA[s];
    primary = Math.min(tumour - 1, Math.max(1, Math.round((tumour * wp) / (wp + ws))));
  }
  const benign = Math.round(0.06 * n);
  return Array.from({ length: n }, (_, i) => (i < primary ? p : i < tumour ? s : i < tumour + benign ? 2 : 0));
}
