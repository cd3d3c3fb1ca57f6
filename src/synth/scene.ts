import { bbox, pointInPolygon, type Polygon } from './geometry.ts';
import type { StainMatch } from './stainMatch.ts';

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
  /** How a near-OOD look-alike is stained (see SynthOptions.lookAlikeStains); default matched. */
  lookAlikeStains?: LookAlikeStains;
}

export type LookAlikeStains = 'matched' | 'natural';

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
  /** Measures the look-alike's stain map (set by buildScene where the slide's look-alike is matched). */
  measureStains?: (scene: Scene) => StainMatch;
  private measuredStains?: StainMatch;
  private measuringStains = false;
  private regionIndex = new Map<number, number[]>();
  private nucleusIndex = new Map<number, number[]>();
  readonly u: number;

  constructor(readonly design: SlideDesign) {
    this.u = 1 / design.mpp;
  }

  /**
   * A near-OOD look-alike's stain amounts mapped onto the slide's tissue's: measured when first asked
   * for (rendering), not when the scene is built, since many scenes are built only to be measured. While
   * it is being measured (by rendering windows of this scene), there is none.
   */
  get stainMatch(): StainMatch | undefined {
    if (this.measuredStains || this.measuringStains || !this.measureStains) return this.measuredStains;
    this.measuringStains = true;
    try {
      this.measuredStains = this.measureStains(this);
    } finally {
      this.measuringStains = false;
    }
    return this.measuredStains;
  }

  /** Whether a near-OOD look-alike on this slide takes its stains from the slide's tissue. */
  get matchesLookAlikeStains(): boolean {
    return !!this.design.anomaly && NEAR_OOD.includes(this.design.anomaly) && this.design.lookAlikeStains !== 'natural';
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
      if (
        r === region ||
        (r.kind === RegionKind.Lumen && r.label === region.label && inside(r.box[0] / 2 + r.box[2] / 2, r.box[1] / 2 + r.box[3] / 2))
      ) {
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
