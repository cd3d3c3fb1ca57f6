/**
 * A linear probe: L2-regularised logistic regression with scikit-learn's objective,
 * C * sum(cross-entropy) + ||W||^2 / 2 (intercepts not penalised), multinomial for three or more
 * classes and binomial for two (scikit-learn's lbfgs solver does the same), minimised with L-BFGS.
 * PathoROB's shortcut protocol and confounder decodability both read it; the test compares its
 * probabilities with scikit-learn's on the same data.
 */
export interface LogisticProbe {
  classes: number;
  d: number;
  /** Rows of weights (one row for two classes: the logit of class 1 over class 0), then one bias per row. */
  weights: Float64Array;
  bias: Float64Array;
}

function rowsOf(classes: number): number {
  return classes === 2 ? 1 : classes;
}

/** Class logits of one sample (class 0's logit is 0 in the binomial form). */
function logitsOf(p: { rows: number; d: number; theta: Float64Array }, x: ArrayLike<number>, i: number, out: Float64Array): void {
  const { rows, d, theta } = p;
  const off = rows === 1 ? 1 : 0;
  if (rows === 1) out[0] = 0;
  for (let r = 0; r < rows; r++) {
    let z = theta[rows * d + r];
    for (let j = 0; j < d; j++) z += theta[r * d + j] * x[i * d + j];
    out[r + off] = z;
  }
}

function softmaxInPlace(z: Float64Array): void {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (let c = 0; c < z.length; c++) sum += z[c] = Math.exp(z[c] - max);
  for (let c = 0; c < z.length; c++) z[c] /= sum;
}

/** Objective (per sample: the mean cross-entropy plus ||W||^2 / (2 C n)) and its gradient. */
function objective(theta: Float64Array, x: ArrayLike<number>, y: ArrayLike<number>, n: number, d: number, classes: number, c: number) {
  const rows = rowsOf(classes);
  const grad = new Float64Array(theta.length);
  const p = new Float64Array(classes);
  const off = rows === 1 ? 1 : 0;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    logitsOf({ rows, d, theta }, x, i, p);
    softmaxInPlace(p);
    loss -= Math.log(Math.max(p[y[i]], 1e-300));
    for (let r = 0; r < rows; r++) {
      const e = p[r + off] - (y[i] === r + off ? 1 : 0);
      for (let j = 0; j < d; j++) grad[r * d + j] += e * x[i * d + j];
      grad[rows * d + r] += e;
    }
  }
  let penalty = 0;
  for (let k = 0; k < rows * d; k++) {
    penalty += theta[k] * theta[k];
    grad[k] += theta[k] / c;
  }
  for (let k = 0; k < grad.length; k++) grad[k] /= n;
  return { value: (loss + penalty / (2 * c)) / n, grad };
}

/** Limited-memory BFGS with a backtracking Armijo line search; stops on a small gradient or a flat objective. */
function lbfgs(
  f: (t: Float64Array) => { value: number; grad: Float64Array },
  start: Float64Array,
  options: { maxIterations: number; tolerance: number },
): Float64Array {
  const memory = 10;
  const s: Float64Array[] = [];
  const yv: Float64Array[] = [];
  let theta = start.slice();
  let cur = f(theta);
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((acc, v, i) => acc + v * b[i], 0);
  for (let it = 0; it < options.maxIterations; it++) {
    if (Math.max(...cur.grad.map(Math.abs)) < options.tolerance) break;
    const q = cur.grad.slice();
    const alpha: number[] = [];
    for (let m = s.length - 1; m >= 0; m--) {
      const a = dot(s[m], q) / dot(yv[m], s[m]);
      alpha[m] = a;
      for (let k = 0; k < q.length; k++) q[k] -= a * yv[m][k];
    }
    const gamma = s.length ? dot(s.at(-1)!, yv.at(-1)!) / dot(yv.at(-1)!, yv.at(-1)!) : 1 / Math.sqrt(dot(cur.grad, cur.grad));
    for (let k = 0; k < q.length; k++) q[k] *= gamma;
    for (let m = 0; m < s.length; m++) {
      const b = dot(yv[m], q) / dot(yv[m], s[m]);
      for (let k = 0; k < q.length; k++) q[k] += s[m][k] * (alpha[m] - b);
    }
    const slope = -dot(cur.grad, q);
    if (slope >= 0) break;
    let step = 1;
    let next = theta;
    let trial = cur;
    for (let ls = 0; ls < 40; ls++) {
      next = theta.map((v, k) => v - step * q[k]);
      trial = f(next);
      if (trial.value <= cur.value + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (trial.value > cur.value) break;
    const sk = next.map((v, k) => v - theta[k]);
    const yk = trial.grad.map((v, k) => v - cur.grad[k]);
    if (dot(sk, yk) > 1e-12) {
      s.push(sk);
      yv.push(yk);
      if (s.length > memory) (s.shift(), yv.shift());
    }
    const flat = Math.abs(cur.value - trial.value) <= 1e-16 * Math.max(1, Math.abs(cur.value));
    theta = next;
    cur = trial;
    if (flat) break;
  }
  return theta;
}

/** Fits the probe on n samples of x (n x d) with labels y in 0..classes-1; `start` warm-starts from another fit. */
export function fitLogisticProbe(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  classes: number,
  options: { c: number; start?: LogisticProbe; maxIterations?: number },
): LogisticProbe {
  const rows = rowsOf(classes);
  const start = new Float64Array(rows * (d + 1));
  if (options.start) (start.set(options.start.weights), start.set(options.start.bias, rows * d));
  const theta = lbfgs((t) => objective(t, x, y, n, d, classes, options.c), start, {
    maxIterations: options.maxIterations ?? 500,
    tolerance: 1e-9,
  });
  return { classes, d, weights: theta.slice(0, rows * d), bias: theta.slice(rows * d) };
}

/** Class probabilities (n x classes). */
export function probeProbabilities(p: LogisticProbe, x: ArrayLike<number>, n: number): Float64Array {
  const rows = rowsOf(p.classes);
  const theta = new Float64Array(rows * (p.d + 1));
  theta.set(p.weights);
  theta.set(p.bias, rows * p.d);
  const out = new Float64Array(n * p.classes);
  const z = new Float64Array(p.classes);
  for (let i = 0; i < n; i++) {
    logitsOf({ rows, d: p.d, theta }, x, i, z);
    softmaxInPlace(z);
    out.set(z, i * p.classes);
  }
  return out;
}

/** The most probable class of each sample (the first on a tie). */
export function probePredictions(p: LogisticProbe, x: ArrayLike<number>, n: number): Int32Array {
  const probs = probeProbabilities(p, x, n);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < p.classes; c++) if (probs[i * p.classes + c] > probs[i * p.classes + best]) best = c;
    out[i] = best;
  }
  return out;
}
