/**
 * Quantiles with linear interpolation between order statistics (NumPy's default, R type 7): the one
 * definition for percentiles, thresholds, bootstrap intervals and Wasserstein quantile grids.
 */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(1, Math.max(0, q)) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The q-quantile (q in [0, 1]) of any values; sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  return sortedQuantile(Float64Array.from(values).sort(), q);
}

/** The p-th percentile (p in [0, 100]); sorts a copy. */
export function percentile(values: ArrayLike<number>, p: number): number {
  return quantile(values, p / 100);
}

/**
 * The q-quantile by selection in linear time (Hoare's quickselect, median-of-three pivots) instead of a
 * sort: for one quantile of many values, as Macenko's 99th percentile of every pixel's concentration.
 * Reorders `values` in place; equals quantile() exactly.
 */
export function selectQuantile(values: Float64Array, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const pos = Math.min(1, Math.max(0, q)) * (n - 1);
  const lo = Math.floor(pos);
  const a = select(values, lo);
  if (lo + 1 >= n || pos === lo) return a;
  // After selection everything right of lo is >= a: the next order statistic is their minimum.
  let b = Infinity;
  for (let i = lo + 1; i < n; i++) if (values[i] < b) b = values[i];
  return a + (b - a) * (pos - lo);
}

/** The k-th smallest value (0-based) by quickselect; reorders `v` in place. */
export function selectKth(v: Float64Array, k: number): number {
  return select(v, k);
}

function select(v: Float64Array, k: number): number {
  let left = 0;
  let right = v.length - 1;
  while (right > left) {
    const mid = (left + right) >> 1;
    const a = v[left];
    const b = v[mid];
    const c = v[right];
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    // Three-way partition (Dijkstra): runs of equal values (glass, clipped pixels) end the search at
    // once instead of degrading to quadratic time.
    let lt = left;
    let gt = right;
    let i = left;
    while (i <= gt) {
      if (v[i] < pivot) swap(v, lt++, i++);
      else if (v[i] > pivot) swap(v, i, gt--);
      else i++;
    }
    if (k < lt) right = lt - 1;
    else if (k > gt) left = gt + 1;
    else return pivot;
  }
  return v[k];
}

function swap(v: Float64Array, i: number, j: number): void {
  const t = v[i];
  v[i] = v[j];
  v[j] = t;
}
