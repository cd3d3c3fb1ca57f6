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

/** Symmetric eigen-decomposition by cyclic Jacobi: eigenvalues descending, vectors as columns. */
export function symmetricEigen(a: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q] ** 2;
    if (off < 1e-20) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * d + q] - m[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const mkp = m[k * d + p];
          const mkq = m[k * d + q];
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          const mpk = m[p * d + k];
          const mqk = m[q * d + k];
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => m[j * d + j] - m[i * d + i]);
  const values = Float64Array.from(order, (i) => m[i * d + i]);
  const vectors = new Float64Array(d * d);
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) vectors[r * d + c] = v[r * d + order[c]];
  return { values, vectors };
}

export function logSumExp(row: ArrayLike<number>, offset: number, k: number, temperature = 1): number {
  let m = -Infinity;
  for (let c = 0; c < k; c++) m = Math.max(m, row[offset + c] / temperature);
  let s = 0;
  for (let c = 0; c < k; c++) s += Math.exp(row[offset + c] / temperature - m);
  return m + Math.log(s);
}
