import { percentile, quantile } from '../core/index.ts';
import { balancedAccuracy } from '../metrics/index.ts';
import { bootstrapByPatient, type Estimate } from './bootstrap.ts';
import { neighbourType, type NeighbourScan, type RepresentationSamples } from './typedNeighbours.ts';

/**
 * Representation robustness as croma (Grisi, van der Laak, Litjens 2026) and PathoROB define it, on the
 * "all" evaluation design: RI, MaRI and CRoMa with its tail statistics. Checked against croma's own code
 * on reference embeddings (test/fixtures/reference) and against configurations whose values follow from
 * their construction.
 */

/** Biological kNN balanced accuracy at k: majority vote of the first k other-group neighbours (ties to the lowest class). */
export function knnBalancedAccuracy(s: RepresentationSamples, scan: NeighbourScan, k: number, classes: number): number {
  const y: number[] = [];
  const pred: number[] = [];
  const votes = new Int32Array(classes);
  for (let i = 0; i < scan.n; i++) {
    const eff = Math.min(k, scan.counts[i]);
    if (eff <= 0) continue;
    votes.fill(0);
    for (let r = 0; r < eff; r++) votes[s.labels[scan.idx[i * scan.kmax + r]]]++;
    let best = 0;
    for (let c = 1; c < classes; c++) if (votes[c] > votes[best]) best = c;
    y.push(s.labels[i]);
    pred.push(best);
  }
  return y.length ? balancedAccuracy(y, pred, classes) : NaN;
}

/**
 * The operating k: the candidate with the highest biological kNN balanced accuracy (the first one on a
 * tie), so RI and MaRI are read at the neighbourhood size where the embedding's biology is best resolved.
 */
export function selectK(
  s: RepresentationSamples,
  scan: NeighbourScan,
  candidates: readonly number[],
  classes: number,
): { k: number; byK: { k: number; balancedAccuracy: number }[] } {
  const byK = candidates.map((k) => ({ k, balancedAccuracy: knnBalancedAccuracy(s, scan, k, classes) }));
  let best = byK[0];
  for (const c of byK) if (c.balancedAccuracy > best.balancedAccuracy || !Number.isFinite(best.balancedAccuracy)) best = c;
  return { k: best.k, byK };
}

/** Per sample, the summed weight of its SO and OS neighbours among its first k. */
export interface TypedEvidence {
  so: Float64Array;
  os: Float64Array;
  /** 1 where at least one typed neighbour is among the first k. */
  informative: Uint8Array;
}

export function typedEvidence(
  s: RepresentationSamples,
  scan: NeighbourScan,
  k: number,
  weight: (distance: number) => number = () => 1,
): TypedEvidence {
  const so = new Float64Array(scan.n);
  const os = new Float64Array(scan.n);
  const informative = new Uint8Array(scan.n);
  for (let i = 0; i < scan.n; i++) {
    for (let r = 0; r < Math.min(k, scan.counts[i]); r++) {
      const j = scan.idx[i * scan.kmax + r];
      const type = neighbourType(s, i, j);
      if (type === 'SO') so[i] += weight(scan.dist[i * scan.kmax + r]);
      else if (type === 'OS') os[i] += weight(scan.dist[i * scan.kmax + r]);
      else continue;
      informative[i] = 1;
    }
  }
  return { so, os, informative };
}

/** The pooled biological share of the typed evidence of rows (default all): sum SO / sum (SO + OS). */
export function pooledShare(ev: TypedEvidence, rows?: ArrayLike<number>): number {
  let so = 0;
  let os = 0;
  const n = rows ? rows.length : ev.so.length;
  for (let r = 0; r < n; r++) {
    const i = rows ? rows[r] : r;
    so += ev.so[i];
    os += ev.os[i];
  }
  return so + os > 0 ? so / (so + os) : NaN;
}

/** MaRI's temperature: the median cosine distance of the typed neighbours among the first k (NaN if none). */
export function typedDistanceMedian(s: RepresentationSamples, scan: NeighbourScan, k: number): number {
  const d: number[] = [];
  for (let i = 0; i < scan.n; i++)
    for (let r = 0; r < Math.min(k, scan.counts[i]); r++) {
      const type = neighbourType(s, i, scan.idx[i * scan.kmax + r]);
      if (type === 'SO' || type === 'OS') d.push(scan.dist[i * scan.kmax + r]);
    }
  return d.length ? quantile(d, 0.5) : NaN;
}

/** croma's fallback when the typed distances have no scale (none, or a median of 0): the score cannot depend on it. */
export const TAU_FALLBACK = 0.2;

/**
 * Per sample CRoMa = (d_OS - d_SO) / (d_OS + d_SO), the mean distances to its m nearest SO and OS
 * neighbours; NaN where the set holds fewer than m of a type or both distances are 0.
 */
export function cromaValues(scan: NeighbourScan): Float64Array {
  const { m } = scan;
  const out = new Float64Array(scan.n);
  for (let i = 0; i < scan.n; i++) {
    let so = 0;
    let os = 0;
    for (let r = 0; r < m; r++) {
      so += scan.so[i * m + r];
      os += scan.os[i * m + r];
    }
    so /= m;
    os /= m;
    out[i] = Number.isFinite(so) && Number.isFinite(os) && so + os > 0 ? (os - so) / (os + so) : NaN;
  }
  return out;
}

/** Mean of the values at or below their alpha-quantile (croma's LTM; NumPy's linear percentile). */
export function lowerTailMean(values: ArrayLike<number>, alpha = 0.1): number {
  const finite = Array.from(values).filter(Number.isFinite);
  if (!finite.length) return NaN;
  const q = percentile(finite, alpha * 100);
  const tail = finite.filter((v) => v <= q);
  return tail.reduce((a, b) => a + b, 0) / tail.length;
}

/** F(0): the share of samples whose margin is at or below 0 (confounder-dominant; a tie counts against biology). */
export function confounderDominantFraction(values: ArrayLike<number>): number {
  const finite = Array.from(values).filter(Number.isFinite);
  return finite.length ? finite.filter((v) => v <= 0).length / finite.length : NaN;
}

export interface NeighbourRobustness {
  k: number;
  kSelection: { k: number; balancedAccuracy: number }[];
  /** Share of samples with at least one typed neighbour among their first k (RI and MaRI rest on them). */
  support: number;
  ri: Estimate;
  mari: Estimate;
  tau: number;
  m: number;
  croma: { median: Estimate; ltm10: Estimate; f0: Estimate; values: Float64Array; undefined: number };
}

/**
 * RI, MaRI and CRoMa of an embedding, each with a percentile bootstrap interval over independence groups
 * (all of a patient's samples drawn together), recomputed from the per-sample evidence, as croma does.
 */
export function neighbourRobustness(
  s: RepresentationSamples,
  scan: NeighbourScan,
  options: { kCandidates: readonly number[]; classes: number; resamples: number; seed: number | string; groupNames: readonly string[] },
): NeighbourRobustness {
  const { k, byK } = selectK(s, scan, options.kCandidates, options.classes);
  const count = typedEvidence(s, scan, k);
  const median = typedDistanceMedian(s, scan, k);
  const tau = Number.isFinite(median) && median > 0 ? median : TAU_FALLBACK;
  const margin = typedEvidence(s, scan, k, (d) => Math.exp(-d / tau));
  const values = cromaValues(scan);
  const patients = Array.from(s.groups, (g) => options.groupNames[g]);
  const boot = (stat: (rows: Int32Array) => number) =>
    bootstrapByPatient(patients, stat, { resamples: options.resamples, seed: options.seed, method: 'percentile' });
  const pick = (rows: Int32Array) => Array.from(rows, (i) => values[i]);
  return {
    k,
    kSelection: byK,
    support: count.informative.reduce((a, b) => a + b, 0) / s.n,
    ri: boot((rows) => pooledShare(count, rows)),
    mari: boot((rows) => pooledShare(margin, rows)),
    tau,
    m: scan.m,
    croma: {
      median: boot((rows) => quantile(pick(rows).filter(Number.isFinite), 0.5)),
      ltm10: boot((rows) => lowerTailMean(pick(rows))),
      f0: boot((rows) => confounderDominantFraction(pick(rows))),
      values,
      undefined: values.filter((v) => !Number.isFinite(v)).length,
    },
  };
}
