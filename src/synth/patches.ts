import type { Rng } from '../core/index.ts';
import { bbox, blobPolygon, pointInPolygon, pointsAlong, shrinkPolygon, type Polygon } from './geometry.ts';
import { LABEL, NucleusKind, RegionKind, type Scene, type SlideDesign } from './scene.ts';

/** Circles already placed, for non-overlapping placement. */
export class Occupancy {
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
export function fillWithNuclei(
  scene: Scene,
  poly: Polygon,
  holes: Polygon[],
  spacing: number,
  size: () => [number, number],
  h: () => number,
  rng: Rng,
  kind: NucleusKind = NucleusKind.Normal,
): number {
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
function gland(
  scene: Scene,
  cx: number,
  cy: number,
  radius: number,
  irregular: number,
  epi: number,
  label: number,
  nucleus: [number, number],
  hNuc: number,
  cyto: [number, number],
  rng: Rng,
  lumen = true,
): void {
  const u = scene.u;
  const outer = blobPolygon(cx, cy, radius, irregular, rng);
  scene.addRegion(outer, RegionKind.Epithelium, label, cyto[0], cyto[1]);
  if (lumen) scene.addRegion(shrinkPolygon(outer, epi), RegionKind.Lumen, label);
  for (const p of pointsAlong(outer, nucleus[0] * 2.6)) {
    const inset = epi * 0.4 + rng.uniform(-0.5, 0.5) * u;
    scene.addNucleus(
      p.x - p.nx * inset,
      p.y - p.ny * inset,
      nucleus[0] * rng.uniform(0.9, 1.1),
      nucleus[1] * rng.uniform(0.9, 1.1),
      Math.atan2(p.ny, p.nx) + Math.PI / 2,
      hNuc * rng.uniform(0.9, 1.1),
      NucleusKind.Normal,
    );
  }
}

function placeIn(
  scene: Scene,
  occ: Occupancy,
  rng: Rng,
  x0: number,
  y0: number,
  size: number,
  r: number,
  tries = 12,
): [number, number] | undefined {
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
export function prostatePatch(scene: Scene, occ: Occupancy, pattern: number, x0: number, y0: number, size: number, rng: Rng): void {
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
      fillWithNuclei(
        scene,
        nest,
        holes,
        11 * u,
        () => [rng.uniform(3.2, 4.0) * u, rng.uniform(2.6, 3.3) * u],
        () => rng.uniform(0.8, 1.0),
        rng,
      );
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
      fillWithNuclei(
        scene,
        sheet,
        [],
        9.5 * u,
        () => [rng.uniform(3.4, 4.6) * u, rng.uniform(2.8, 3.8) * u],
        () => rng.uniform(0.85, 1.1),
        rng,
      );
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
export function breastPatch(scene: Scene, occ: Occupancy, d: SlideDesign, x0: number, y0: number, size: number, rng: Rng): void {
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

export function fatLobule(scene: Scene, occ: Occupancy, x0: number, y0: number, size: number, rng: Rng): void {
  const u = scene.u;
  for (let k = 0; k < 12; k++) {
    const r = rng.uniform(22, 38) * u;
    const at = placeIn(scene, occ, rng, x0, y0, size, r + 1.5 * u, 4);
    if (at) scene.addRegion(blobPolygon(at[0], at[1], r, 0.15, rng, 12), RegionKind.Fat, LABEL.stroma);
  }
}

export function stromalNuclei(scene: Scene, occ: Occupancy, x0: number, y0: number, size: number, rng: Rng, density: number): void {
  const u = scene.u;
  const n = Math.round(((size / u) * (size / u) * density) / 1e4);
  const a = scene.anomalyArea;
  for (let k = 0; k < n; k++) {
    const x = x0 + rng.uniform(0, size);
    const y = y0 + rng.uniform(0, size);
    if (!scene.inTissue(x, y) || !occ.free(x, y, 3 * u) || (a && Math.hypot(x - a.cx, y - a.cy) < a.r)) continue;
    scene.addNucleus(
      x,
      y,
      rng.uniform(4, 6.5) * u,
      rng.uniform(1.2, 1.8) * u,
      rng.uniform(-0.35, 0.35),
      rng.uniform(0.7, 0.95),
      NucleusKind.Stromal,
    );
  }
}
