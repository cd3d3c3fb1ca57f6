import { cohenKappa } from '../metrics/index.ts';

/**
 * Fleiss' kappa for cases each rated by the same number of raters (rows: per-case counts per class).
 * P_bar = mean over cases of sum_j n_ij (n_ij - 1) / (n (n - 1)); P_e = sum_j p_j^2.
 */
export function fleissKappa(counts: number[][]): number {
  const N = counts.length;
  if (N === 0) return NaN;
  const n = counts[0].reduce((a, b) => a + b, 0);
  if (n < 2) return NaN;
  const k = counts[0].length;
  const pj = new Array<number>(k).fill(0);
  let pBar = 0;
  for (const row of counts) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      s += row[j] * (row[j] - 1);
      pj[j] += row[j];
    }
    pBar += s / (n * (n - 1));
  }
  pBar /= N;
  const pe = pj.reduce((a, c) => a + (c / (N * n)) ** 2, 0);
  return pe === 1 ? (pBar === 1 ? 1 : NaN) : (pBar - pe) / (1 - pe);
}

export interface AgreementReport {
  raters: string[];
  /** Cases rated by every rater. */
  cases: number;
  pairwise: { a: string; b: string; kappa: number; qwk: number }[];
  fleiss: number;
  /** Mean pairwise QWK among raters: the bar the model is read against. */
  meanRaterQwk: number;
}

export function raterAgreement(raters: Record<string, number>[], k: number): AgreementReport | undefined {
  const names = [...new Set(raters.flatMap((r) => Object.keys(r)))].sort();
  if (names.length < 2) return undefined;
  const complete = raters.filter((r) => names.every((n) => r[n] !== undefined));
  const pairwise: AgreementReport['pairwise'] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const both = raters.filter((r) => r[names[i]] !== undefined && r[names[j]] !== undefined);
      const a = both.map((r) => r[names[i]]);
      const b = both.map((r) => r[names[j]]);
      pairwise.push({ a: names[i], b: names[j], kappa: cohenKappa(a, b, k), qwk: cohenKappa(a, b, k, 'quadratic') });
    }
  }
  const counts = complete.map((r) => {
    const c = new Array<number>(k).fill(0);
    for (const n of names) c[r[n]]++;
    return c;
  });
  return {
    raters: names,
    cases: complete.length,
    pairwise,
    fleiss: fleissKappa(counts),
    meanRaterQwk: pairwise.reduce((s, p) => s + p.qwk, 0) / pairwise.length,
  };
}
