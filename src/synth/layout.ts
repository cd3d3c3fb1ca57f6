import { createRng, type Rng } from '../core/index.ts';
import { overlayAnomaly, regionAnomaly } from './anomalies.ts';
import { blobPolygon, polygonArea } from './geometry.ts';
import { breastPatch, fatLobule, Occupancy, prostatePatch, stromalNuclei } from './patches.ts';
import { RegionKind, Scene, type SlideDesign } from './scene.ts';
import { measureStainMatch } from './stainMatch.ts';

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
      scene.capsules.push({
        ax: W * rng.uniform(0.08, 0.15) + r,
        ay: cyk + rng.uniform(-0.05, 0.05) * H,
        bx: W * rng.uniform(0.85, 0.92) - r,
        by: cyk + rng.uniform(-0.05, 0.05) * H,
        r,
      });
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
  if (scene.matchesLookAlikeStains && scene.anomalyArea) scene.measureStains = measureStainMatch;
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
function ensureGleasonAreas(
  scene: Scene,
  occ: Occupancy,
  ranked: { x: number; y: number }[],
  patterns: number[],
  cell: number,
  rng: Rng,
): void {
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
      const regions = scene.regions
        .map((r, i) => ({ r, i, a: r.kind === RegionKind.Epithelium && r.label === s ? polygonArea(r.poly) : 0 }))
        .filter((x) => x.a > 0)
        .sort((x, y) => y.a - x.a);
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
  const corners = [
    [0.5, 0.5],
    [0.1, 0.1],
    [0.9, 0.1],
    [0.1, 0.9],
    [0.9, 0.9],
  ];
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
