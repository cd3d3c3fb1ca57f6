/** Small dense linear algebra on row-major Float64Array matrices (d up to a few hundred). */

export function meanRows(x: Float32Array, n: number, d: number, rows?: ArrayLike<number>): Float64Array {
  const m = new Float64Array(d);
  const idx = rows ?? Array.from({ length: n }, (_, i) => i);
  for (let t = 0; t < idx.length; t++) {
    const o = idx[t] * d;
    for (let j = 0; j < d; j++) m[j] += x[o + j];
  }
  for (let j = 0; j < d; j++) m[j] /= Math.max(1, idx.length);
  return m;
}

/** Cholesky factor L (lower) of a symmetric positive-definite matrix; throws if not SPD. */
export function cholesky(a: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j];
      for (let k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
      if (i === j) {
        if (s <= 0) throw new Error('matrix is not positive definite');
        l[i * d + i] = Math.sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j];
      }
    }
  }
  return l;
}

/** Solves L y = b (forward substitution) in place into y. */
export function forwardSolve(l: Float64Array, d: number, b: Float64Array, y: Float64Array): void {
  for (let i = 0; i < d; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * d + k] * y[k];
    y[i] = s / l[i * d + i];
  }
}

export function logSumExp(row: ArrayLike<number>, offset: number, k: number, temperature = 1): number {
  let m = -Infinity;
  for (let c = 0; c < k; c++) m = Math.max(m, row[offset + c] / temperature);
  let s = 0;
  for (let c = 0; c < k; c++) s += Math.exp(row[offset + c] / temperature - m);
  return m + Math.log(s);
}
