import { sortedQuantile } from '../core/index.ts';
import { hash2, valueNoise } from './noise.ts';
import { seedOf, stainConcentrations, type StainConcentrations } from './render.ts';
import { LABEL, type Scene } from './scene.ts';

/** Points of the quantile grid a map is built on (every 1/256 of the distribution). */
const GRID = 257;
/** Sampling windows: size in pixels, and how many across the slide and across the look-alike. */
const WINDOW = 12;
const SLIDE_WINDOWS = 32;
const AREA_WINDOWS = 20;

/**
 * A monotone map that carries one distribution onto another (histogram matching on a quantile grid):
 * a value's rank among the source's is found and the target's value of that rank returned. Where the
 * source has a point mass (a constant cytoplasm, a clear vacuole) the rank is spread over the mass by a
 * per-pixel dither, so the mass lands on the target's whole range there and not on one value.
 */
export class QuantileMap {
  private constructor(
    readonly from: Float64Array,
    readonly to: Float64Array,
  ) {}

  static between(source: ArrayLike<number>, target: ArrayLike<number>): QuantileMap {
    if (source.length === 0 || target.length === 0) throw new Error('a quantile map needs values on both sides');
    const grid = (values: ArrayLike<number>) => {
      const sorted = Float64Array.from(values).sort();
      return Float64Array.from({ length: GRID }, (_, k) => sortedQuantile(sorted, k / (GRID - 1)));
    };
    return new QuantileMap(grid(source), grid(target));
  }

  /** The rank (0..1) of v among the source's values; dither in [0, 1) places it inside a point mass. */
  rank(v: number, dither: number): number {
    const q = this.from;
    const last = GRID - 1;
    if (v < q[0]) return 0;
    if (v > q[last]) return 1;
    // lo: first grid point >= v; hi: last grid point <= v.
    let a = 0;
    let b = last;
    while (a < b) {
      const m = (a + b) >> 1;
      if (q[m] < v) a = m + 1;
      else b = m;
    }
    const lo = a;
    if (q[lo] === v) {
      let hi = lo;
      while (hi < last && q[hi + 1] === v) hi++;
      return (lo + dither * (hi - lo)) / last;
    }
    return (lo - 1 + (v - q[lo - 1]) / (q[lo] - q[lo - 1])) / last;
  }

  map(v: number, dither = 0.5): number {
    return this.valueAt(v, this.rank(v, dither));
  }

  /** The target's value for a source value whose rank is already known (rank(v, dither)). */
  valueAt(v: number, rank: number): number {
    const last = GRID - 1;
    // Beyond the source's range, shift by the ends' difference (values the sample did not reach).
    if (v < this.from[0]) return this.to[0] + (v - this.from[0]);
    if (v > this.from[last]) return this.to[last] + (v - this.from[last]);
    return sortedQuantile(this.to, rank);
  }
}

/** Haematoxylin-rank bins within which eosin is matched, so the pair (and so the colour) is matched too. */
const BINS = 8;
/** A bin with fewer look-alike samples than this takes the eosin map of all of them. */
const MIN_BIN = 50;
/** How far the ordering key may move a pixel from its own stain amount (a share either way). */
const JITTER = 0.3;

/**
 * The key a look-alike pixel is ranked by: its stain amount, moved up or down by its jitter (its
 * nucleus's, or smooth noise between nuclei). The map hands the tissue's values out by rank, so the
 * key decides only which pixel gets which: whole nuclei move together and a constant cytoplasm varies
 * smoothly, where ranking by the amount alone would scatter one nucleus's pixels over the tissue's
 * whole range and leave a speckle no stain makes.
 */
function matchKey(amount: number, jitter: number): number {
  return amount * (1 + 2 * JITTER * (jitter - 0.5));
}

/**
 * Eosin is ordered within a haematoxylin-rank bin mostly by the jitter: a bin's tissue eosin can be
 * two populations (a lumen's clear pixels beside stroma's pink), and ordering by each pixel's own
 * noisy amount would scatter the clear ones as single-pixel specks, where the jitter gathers them into
 * patches of a few microns.
 */
function eosinKey(amount: number, jitter: number): number {
  return jitter + 0.05 * amount;
}

/** The jitter of a look-alike pixel: its nucleus's, else smooth noise of a few microns. */
function jitterAt(c: StainConcentrations, p: number, gx: number, gy: number, u: number, seed: number): number {
  const j = c.jitter ? c.jitter[p] : -1;
  return j >= 0 ? j : valueNoise(gx, gy, 3 * u, seed + 43);
}

/**
 * The stains of a near-OOD look-alike (lymphoid infiltrate, mucinous carcinoma) mapped onto those of
 * the tissue it replaces: its haematoxylin amounts follow the slide's own tissue's distribution, and
 * its eosin amounts the tissue's among pixels of the same haematoxylin rank (a colour is the pair, and
 * each channel alone would leave lymphocytes' dark nuclei with stroma's eosin). Only its morphology
 * (dense round lymphocytes, signet-ring cells in mucin pools) then tells it apart, as real look-alikes
 * are told apart by how they are arranged rather than by their colour.
 */
export class StainMatch {
  constructor(
    readonly h: QuantileMap,
    /** Eosin maps per haematoxylin-rank bin (BINS of them). */
    readonly e: QuantileMap[],
    /** Pixels per micron of the slide (the scale of the jitter between nuclei). */
    readonly u: number,
  ) {}

  /** Maps the look-alike's pixels (mask value anomaly) of a rendered rectangle in place. */
  apply(c: StainConcentrations, x: number, y: number, w: number, seed: number): void {
    const { H, E, labels } = c;
    for (let p = 0; p < labels.length; p++) {
      if (labels[p] !== LABEL.anomaly) continue;
      const gx = x + (p % w);
      const gy = y + ((p / w) | 0);
      const j = jitterAt(c, p, gx, gy, this.u, seed);
      const dither = hash2(gx, gy, seed + 31);
      const hKey = matchKey(H[p], j);
      const rank = this.h.rank(hKey, dither);
      H[p] = this.h.valueAt(hKey, rank);
      E[p] = this.e[binOf(rank)].map(eosinKey(E[p], j), hash2(gx, gy, seed + 37));
    }
  }
}

const binOf = (rank: number) => Math.min(BINS - 1, Math.floor(rank * BINS));

interface Sample {
  /** Haematoxylin and eosin: amounts for the tissue, ordering keys for the look-alike. */
  h: number[];
  e: number[];
  /** Per-pixel dither of the haematoxylin rank (as apply draws it). */
  dither: number[];
}

/**
 * Measures a scene's stain amounts in windows on a grid (across the slide for its tissue, across the
 * look-alike's area for the look-alike) and returns the map from the look-alike's onto the tissue's.
 * The windows depend only on the scene, so every worker rendering any tile computes the same map.
 */
export function measureStainMatch(scene: Scene): StainMatch {
  const area = scene.anomalyArea;
  if (!area) throw new Error('stain matching needs a region anomaly');
  const seed = seedOf(scene.design.seed);
  const tissue: Sample = { h: [], e: [], dither: [] };
  const lookAlike: Sample = { h: [], e: [], dither: [] };
  // The look-alike's own windows add to its sample only: the tissue just around it is no more the
  // slide's tissue than any other part.
  const sample = (x0: number, y0: number, x1: number, y1: number, n: number, withTissue: boolean) => {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        const x = Math.round(x0 + ((i + 0.5) / n) * (x1 - x0) - WINDOW / 2);
        const y = Math.round(y0 + ((j + 0.5) / n) * (y1 - y0) - WINDOW / 2);
        const c = stainConcentrations(scene, x, y, WINDOW, WINDOW);
        for (let p = 0; p < c.labels.length; p++) {
          const gx = x + (p % WINDOW);
          const gy = y + ((p / WINDOW) | 0);
          if (c.labels[p] === LABEL.anomaly) {
            const jit = jitterAt(c, p, gx, gy, scene.u, seed);
            lookAlike.h.push(matchKey(c.H[p], jit));
            lookAlike.e.push(eosinKey(c.E[p], jit));
            lookAlike.dither.push(hash2(gx, gy, seed + 31));
          } else if (withTissue && c.labels[p] !== LABEL.background) {
            tissue.h.push(c.H[p]);
            tissue.e.push(c.E[p]);
            tissue.dither.push(hash2(gx, gy, seed + 31));
          }
        }
      }
    }
  };
  sample(0, 0, scene.design.width, scene.design.height, SLIDE_WINDOWS, true);
  sample(area.cx - area.r, area.cy - area.r, area.cx + area.r, area.cy + area.r, AREA_WINDOWS, false);
  if (lookAlike.h.length < MIN_BIN || tissue.h.length < MIN_BIN * BINS)
    throw new Error(`slide ${scene.design.id}: too few pixels to match its look-alike's stains on`);
  const hMap = QuantileMap.between(lookAlike.h, tissue.h);
  // The tissue's pixels binned by their haematoxylin rank (ties broken by the same dither), the
  // look-alike's by the rank the map gives them: a look-alike pixel of bin b lands among tissue pixels of bin b.
  const tissueBins = binned(tissue, rankOrder(tissue));
  const lookAlikeBins = binned(
    lookAlike,
    lookAlike.h.map((v, k) => hMap.rank(v, lookAlike.dither[k])),
  );
  const allE = QuantileMap.between(lookAlike.e, tissue.e);
  const eMaps = lookAlikeBins.map((source, b) => (source.length >= MIN_BIN ? QuantileMap.between(source, tissueBins[b]) : allE));
  return new StainMatch(hMap, eMaps, scene.u);
}

/** Each pixel's rank (0..1) by haematoxylin, ties broken by its dither. */
function rankOrder(s: Sample): number[] {
  const order = s.h.map((_, k) => k).sort((a, b) => s.h[a] - s.h[b] || s.dither[a] - s.dither[b]);
  const ranks = new Array<number>(order.length);
  order.forEach((k, i) => (ranks[k] = i / Math.max(1, order.length - 1)));
  return ranks;
}

/** Eosin amounts per haematoxylin-rank bin. */
function binned(s: Sample, ranks: number[]): number[][] {
  const bins = Array.from({ length: BINS }, () => [] as number[]);
  ranks.forEach((r, k) => bins[binOf(r)].push(s.e[k]));
  return bins;
}
