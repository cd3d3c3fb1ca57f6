/**
 * Embeddings seen as croma and PathoROB see them: each sample has a biological label, a confounder
 * value (site, scanner) and an independence group (patient); its neighbours are the nearest samples by
 * cosine distance, never from its own group (a near-duplicate of the sample says nothing about the
 * representation). A neighbour is typed by what it shares with the sample:
 * SO same label, other confounder (the biological match); OS other label, same confounder (the
 * confounder impostor); SS and OO carry no evidence either way.
 */
export interface RepresentationSamples {
  n: number;
  d: number;
  /** n x d embeddings (any scale: they are L2-normalised here). */
  features: ArrayLike<number>;
  /** Class index per sample (0..), biological label. */
  labels: Int32Array;
  /** Confounder value index per sample. */
  confounders: Int32Array;
  /** Independence group index per sample (patient or slide). */
  groups: Int32Array;
}

/** What the metrics read of each sample's neighbourhood; computed once by scanNeighbours. */
export interface NeighbourScan {
  n: number;
  /** The kmax nearest neighbours of other groups, nearest first (-1 padded), and their cosine distances. */
  kmax: number;
  idx: Int32Array;
  dist: Float64Array;
  /** How many of the kmax slots hold a neighbour (fewer when the other groups are fewer). */
  counts: Int32Array;
  /** Per sample, the m nearest SO and OS distances (Infinity where fewer exist in the whole set). */
  m: number;
  so: Float64Array;
  os: Float64Array;
}

/** Rows scaled to unit length in float64; a zero row stays zero (its cosine distance to anything is 1). */
export function unitRows(features: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += features[i * d + j] * features[i * d + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = features[i * d + j] * inv;
  }
  return out;
}

export type NeighbourType = 'SO' | 'OS' | 'SS' | 'OO';

export function neighbourType(s: RepresentationSamples, i: number, j: number): NeighbourType {
  const sameLabel = s.labels[i] === s.labels[j];
  const sameConfounder = s.confounders[i] === s.confounders[j];
  return sameLabel ? (sameConfounder ? 'SS' : 'SO') : sameConfounder ? 'OS' : 'OO';
}

/**
 * Exact cosine neighbours of every sample (distance 1 - cos, clipped to [0, 2] as scikit-learn's
 * cosine_distances does), ordered by distance then index. croma searches outward with an approximate
 * growing fetch; an exhaustive scan gives the same neighbourhoods without its buffer heuristics. The
 * cost is n^2 d: callers bound n (tiles per slide, a sample cap).
 */
export function scanNeighbours(s: RepresentationSamples, kmax: number, m: number, onRow?: (i: number) => void): NeighbourScan {
  const { n, d } = s;
  const unit = unitRows(s.features, n, d);
  const idx = new Int32Array(n * kmax).fill(-1);
  const dist = new Float64Array(n * kmax).fill(Infinity);
  const counts = new Int32Array(n);
  const so = new Float64Array(n * m).fill(Infinity);
  const os = new Float64Array(n * m).fill(Infinity);
  const row = new Float64Array(n);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) {
      if (j === i || s.groups[j] === s.groups[i]) continue;
      let dot = 0;
      for (let t = 0; t < d; t++) dot += unit[i * d + t] * unit[j * d + t];
      row[j] = Math.min(2, Math.max(0, 1 - dot));
      order[c++] = j;
    }
    const sorted = order.subarray(0, c).sort((a, b) => row[a] - row[b] || a - b);
    counts[i] = Math.min(kmax, c);
    for (let r = 0; r < counts[i]; r++) {
      idx[i * kmax + r] = sorted[r];
      dist[i * kmax + r] = row[sorted[r]];
    }
    let nso = 0;
    let nos = 0;
    for (let r = 0; r < c && (nso < m || nos < m); r++) {
      const type = neighbourType(s, i, sorted[r]);
      if (type === 'SO' && nso < m) so[i * m + nso++] = row[sorted[r]];
      else if (type === 'OS' && nos < m) os[i * m + nos++] = row[sorted[r]];
    }
    onRow?.(i);
  }
  return { n, kmax, idx, dist, counts, m, so, os };
}
