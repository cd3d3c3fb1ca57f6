/**
 * Binary scores sorted once, so that any multiset of their rows (a bootstrap resample, a jackknife
 * sample: row counts) gives its AUROC, FPR at a TPR and trapezoidal AUPR in one linear pass instead of a
 * sort per resample. Every value equals what metrics' auroc, rocCurve and auprTrapezoid give on the
 * resampled arrays: the same tie groups, counts and arithmetic (tested against them).
 */
export class RankedScores {
  /** Row indices by descending score. */
  private readonly order: Int32Array;

  constructor(
    private readonly labels: ArrayLike<number>,
    private readonly scores: ArrayLike<number>,
  ) {
    this.order = Int32Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  }

  /** How many times each row occurs in `rows`. */
  counts(rows: ArrayLike<number>): Int32Array {
    const w = new Int32Array(this.labels.length);
    for (let i = 0; i < rows.length; i++) w[rows[i]]++;
    return w;
  }

  /**
   * Cumulative true and false positives at the end of every tie group with any weight, from the highest
   * score down; P and N are the weighted positives and negatives.
   */
  private sweep(w: Int32Array): { tp: number[]; fp: number[]; P: number; N: number } {
    const tp: number[] = [];
    const fp: number[] = [];
    let t = 0;
    let f = 0;
    const n = this.order.length;
    for (let i = 0; i < n;) {
      let j = i;
      let any = false;
      const s = this.scores[this.order[i]];
      for (; j < n && this.scores[this.order[j]] === s; j++) {
        const row = this.order[j];
        if (!w[row]) continue;
        any = true;
        if (this.labels[row] === 1) t += w[row];
        else f += w[row];
      }
      if (any) {
        tp.push(t);
        fp.push(f);
      }
      i = j;
    }
    return { tp, fp, P: t, N: f };
  }

  /** AUROC (Mann-Whitney with ties counted half); NaN without both classes. */
  auroc(w: Int32Array): number {
    const { tp, fp, P, N } = this.sweep(w);
    if (P === 0 || N === 0) return NaN;
    let u = 0;
    for (let k = 0; k < tp.length; k++) {
      const tpBefore = k ? tp[k - 1] : 0;
      const fpBefore = k ? fp[k - 1] : 0;
      u += ((fp[k] - fpBefore) * (tp[k] + tpBefore)) / 2;
    }
    return u / (P * N);
  }

  /** The false positive rate at the first threshold reaching the TPR (1 when none does). */
  fprAtTpr(w: Int32Array, tpr = 0.95): number {
    // The curve starts at (0, 0): a target of 0 is met there.
    if (tpr <= 1e-12) return 0;
    const { tp, fp, P, N } = this.sweep(w);
    for (let k = 0; k < tp.length; k++) if ((P ? tp[k] / P : 0) >= tpr - 1e-12) return N ? fp[k] / N : 0;
    return 1;
  }

  /** Trapezoidal area under the precision-recall curve from (0, 1) to the first point at full recall (OpenOOD's AUPR). */
  auprTrapezoid(w: Int32Array): number {
    const { tp, fp, P } = this.sweep(w);
    if (!tp.length || (P ? tp[tp.length - 1] / P : 0) === 0) return NaN;
    let area = 0;
    let prevRecall = 0;
    let prevPrecision = 1;
    for (let k = 0; k < tp.length; k++) {
      const recall = P ? tp[k] / P : 0;
      const precision = tp[k] / (tp[k] + fp[k]);
      area += ((recall - prevRecall) * (precision + prevPrecision)) / 2;
      prevRecall = recall;
      prevPrecision = precision;
      if (recall >= 1) break;
    }
    return area;
  }
}
