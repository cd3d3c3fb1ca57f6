import jstat from 'jstat';

// jStat's distributions (regularised incomplete beta and gamma functions by continued fractions), which
// take the fractional degrees of freedom of Hillis' F tests; checked against published OR-DBM MRMC output
// and SciPy in the tests.
const { centralF, chisquare, studentt } = jstat;

/** P(F > x) for an F distribution with d1 and d2 (possibly fractional) degrees of freedom. */
export function fSf(x: number, d1: number, d2: number): number {
  return 1 - centralF.cdf(x, d1, d2);
}

/** P(X > x) for a chi-square distribution with k degrees of freedom. */
export function chiSquareSf(x: number, k: number): number {
  return 1 - chisquare.cdf(x, k);
}

/** The p-quantile of Student's t with (possibly fractional) df degrees of freedom. */
export function tQuantile(p: number, df: number): number {
  return studentt.inv(p, df);
}
