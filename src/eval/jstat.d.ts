// The part of jStat (no published types) that eval/distributions.ts uses.
declare module 'jstat' {
  const jStat: {
    centralF: { cdf(x: number, d1: number, d2: number): number };
    chisquare: { cdf(x: number, k: number): number };
    studentt: { inv(p: number, df: number): number };
  };
  export default jStat;
}
