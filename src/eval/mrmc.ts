import { normalQuantile } from '../core/index.ts';
import { quadraticWeightedKappa } from '../metrics/index.ts';
import { chiSquareSf, fSf, tQuantile } from './distributions.ts';

/** What a reader's ratings of the cases are scored by. */
export type MrmcFom = 'auc' | 'accuracy' | 'qwk';

/**
 * A fully crossed reader study: every reader rated every case under every modality. ratings[i][j][k]
 * is modality i, reader j, case k; truth[k] is the case's truth (0/1 for AUC, a grade for accuracy/QWK).
 */
export interface ReaderStudy {
  modalities: string[];
  readers: string[];
  cases: string[];
  truth: Float64Array;
  ratings: Float64Array[][];
  /** Number of grade classes (accuracy, QWK); truth and ratings are class indices 0..classes-1. */
  classes?: number;
}

export interface MrmcInterval {
  estimate: number;
  se: number;
  df: number | null;
  lower: number;
  upper: number;
  p?: number;
}

export interface MrmcAnalysis {
  fom: MrmcFom;
  modalities: string[];
  readers: string[];
  cases: number;
  /** Cases with truth 0 and 1 (AUC only). */
  normal?: number;
  abnormal?: number;
  /** Figure of merit per modality (row) and reader (column), and per modality averaged over readers. */
  readerFom: number[][];
  modalityFom: number[];
  /** Obuchowski-Rockette error variance and covariances from the case jackknife. */
  components: { varR: number; varTR: number; cov1: number; cov2: number; cov3: number; varError: number };
  meanSquares: { T: number; R: number; TR: number; RperModality: number[] };
  /** Random readers and random cases (Hillis 2007 ddf), fixed readers, fixed cases. */
  rrrc: { F: number; ndf: number; ddf: number; p: number; differences: MrmcDifference[]; single: MrmcInterval[] };
  frrc: {
    chi2: number;
    df: number;
    p: number;
    differences: MrmcDifference[];
    single: MrmcInterval[];
    perReader: { reader: string; differences: MrmcDifference[] }[];
  };
  rrfc: { F: number; ndf: number; ddf: number; p: number; differences: MrmcDifference[]; single: MrmcInterval[] };
}

export interface MrmcDifference extends MrmcInterval {
  /** Modality a minus modality b. */
  a: string;
  b: string;
}

/** Wilcoxon (trapezoidal) AUC of abnormal (truth 1) against normal (truth 0) ratings; ties count half. */
function wilcoxonAuc(truth: Float64Array, ratings: Float64Array, keep: (k: number) => boolean): number {
  let sum = 0;
  let pairs = 0;
  for (let a = 0; a < truth.length; a++) {
    if (truth[a] !== 1 || !keep(a)) continue;
    for (let n = 0; n < truth.length; n++) {
      if (truth[n] !== 0 || !keep(n)) continue;
      sum += ratings[a] > ratings[n] ? 1 : ratings[a] === ratings[n] ? 0.5 : 0;
      pairs++;
    }
  }
  return sum / pairs;
}

function fomOf(fom: MrmcFom, study: ReaderStudy, ratings: Float64Array, leaveOut = -1): number {
  const keep = (k: number) => k !== leaveOut;
  if (fom === 'auc') return wilcoxonAuc(study.truth, ratings, keep);
  const y: number[] = [];
  const r: number[] = [];
  for (let k = 0; k < study.truth.length; k++)
    if (keep(k)) {
      y.push(study.truth[k]);
      r.push(ratings[k]);
    }
  if (fom === 'accuracy') return y.filter((v, i) => v === r[i]).length / y.length;
  return quadraticWeightedKappa(y, r, study.classes!);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Average of the covariance entries cov[i][j][i'][j'] that pass `pick`. */
function averageCov(cov: number[][][][], t: number, r: number, pick: (i: number, j: number, i2: number, j2: number) => boolean): number {
  const xs: number[] = [];
  for (let i = 0; i < t; i++)
    for (let j = 0; j < r; j++)
      for (let i2 = 0; i2 < t; i2++) for (let j2 = 0; j2 < r; j2++) if (pick(i, j, i2, j2)) xs.push(cov[i][j][i2][j2]);
  return xs.length ? mean(xs) : 0;
}

function interval(estimate: number, se: number, df: number | null, p?: number): MrmcInterval {
  const q = df === null ? normalQuantile(0.975) : tQuantile(0.975, df);
  return { estimate, se, df, lower: estimate - q * se, upper: estimate + q * se, ...(p !== undefined ? { p } : {}) };
}

function twoSidedP(z: number, df: number | null): number {
  return df === null ? chiSquareSf(z * z, 1) : fSf(z * z, 1, df);
}

/**
 * Obuchowski-Rockette analysis of a fully crossed MRMC study (Obuchowski & Rockette 1995; Hillis 2007
 * denominator degrees of freedom; Hillis et al. 2008), with error covariances estimated by jackknifing
 * cases, as OR-DBM MRMC and RJafroc compute it: random readers and cases, fixed readers, fixed cases.
 */
export function analyseMrmc(study: ReaderStudy, fom: MrmcFom): MrmcAnalysis {
  const t = study.modalities.length;
  const r = study.readers.length;
  const c = study.cases.length;
  const theta = study.ratings.map((byReader) => byReader.map((ratings) => fomOf(fom, study, ratings)));
  // Jackknife pseudo-values: FOM with each case left out, per modality and reader.
  const jack = study.ratings.map((byReader) =>
    byReader.map((ratings) => Float64Array.from({ length: c }, (_, k) => fomOf(fom, study, ratings, k))),
  );
  const jMean = jack.map((byReader) => byReader.map((v) => v.reduce((a, b) => a + b, 0) / c));
  const cov: number[][][][] = [];
  for (let i = 0; i < t; i++) {
    cov.push([]);
    for (let j = 0; j < r; j++) {
      cov[i].push([]);
      for (let i2 = 0; i2 < t; i2++) {
        cov[i][j].push([]);
        for (let j2 = 0; j2 < r; j2++) {
          let s = 0;
          for (let k = 0; k < c; k++) s += (jack[i][j][k] - jMean[i][j]) * (jack[i2][j2][k] - jMean[i2][j2]);
          cov[i][j][i2].push(((c - 1) / c) * s);
        }
      }
    }
  }
  const varError = averageCov(cov, t, r, (i, j, i2, j2) => i === i2 && j === j2);
  const cov1 = averageCov(cov, t, r, (i, j, i2, j2) => i !== i2 && j === j2);
  const cov2 = averageCov(cov, t, r, (i, j, i2, j2) => i === i2 && j !== j2);
  const cov3 = averageCov(cov, t, r, (i, j, i2, j2) => i !== i2 && j !== j2);

  const modalityFom = theta.map((row) => mean(row));
  const readerMean = study.readers.map((_, j) => mean(theta.map((row) => row[j])));
  const grand = mean(modalityFom);
  const msT = (r * modalityFom.reduce((s, m) => s + (m - grand) ** 2, 0)) / (t - 1);
  const msR = (t * readerMean.reduce((s, m) => s + (m - grand) ** 2, 0)) / (r - 1);
  let ssTR = 0;
  for (let i = 0; i < t; i++) for (let j = 0; j < r; j++) ssTR += (theta[i][j] - modalityFom[i] - readerMean[j] + grand) ** 2;
  const msTR = ssTR / ((t - 1) * (r - 1));
  const msRi = theta.map((row, i) => row.reduce((s, v) => s + (v - modalityFom[i]) ** 2, 0) / (r - 1));

  const pairs: [number, number][] = [];
  for (let a = 0; a < t; a++) for (let b = a + 1; b < t; b++) pairs.push([a, b]);
  const differences = (se: number, df: number | null): MrmcDifference[] =>
    pairs.map(([a, b]) => {
      const d = modalityFom[a] - modalityFom[b];
      return { a: study.modalities[a], b: study.modalities[b], ...interval(d, se, df, twoSidedP(d / se, df)) };
    });

  // Random readers, random cases: Hillis' error term and denominator degrees of freedom.
  const errRR = msTR + r * Math.max(cov2 - cov3, 0);
  const ddfH = errRR ** 2 / (msTR ** 2 / ((t - 1) * (r - 1)));
  // An F test of the modality mean square over an error term, and the pairwise differences it implies.
  const fTest = (err: number, ddf: number) => ({
    F: msT / err,
    ndf: t - 1,
    ddf,
    p: fSf(msT / err, t - 1, ddf),
    differences: differences(Math.sqrt((2 / r) * err), ddf),
  });
  // One modality's own error variance and reader-pair covariance, for its single-modality interval.
  const perModality = study.modalities.map((_, i) => ({
    v: averageCov(cov, t, r, (a, j, a2, j2) => a === i && a2 === i && j === j2),
    c2: averageCov(cov, t, r, (a, j, a2, j2) => a === i && a2 === i && j !== j2),
  }));
  const rrrc = {
    ...fTest(errRR, ddfH),
    single: perModality.map(({ c2 }, i) => {
      const e = msRi[i] + r * Math.max(c2, 0);
      return interval(modalityFom[i], Math.sqrt(e / r), e ** 2 / (msRi[i] ** 2 / (r - 1)));
    }),
  };

  // Fixed readers, random cases: a chi-square test over the case-sampling covariance.
  const errFR = varError - cov1 + (r - 1) * Math.max(cov2 - cov3, 0);
  const chi2 = ((t - 1) * msT) / errFR;
  const frrc = {
    chi2,
    df: t - 1,
    p: chiSquareSf(chi2, t - 1),
    differences: differences(Math.sqrt((2 / r) * errFR), null),
    single: perModality.map(({ v, c2 }, i) => interval(modalityFom[i], Math.sqrt((v + (r - 1) * Math.max(c2, 0)) / r), null)),
    perReader: study.readers.map((reader, j) => {
      const v = mean(study.modalities.map((_, i) => cov[i][j][i][j]));
      const c1 = averageCov(cov, t, r, (i, jj, i2, jj2) => jj === j && jj2 === j && i !== i2);
      const se = Math.sqrt(2 * (v - c1));
      return {
        reader,
        differences: pairs.map(([a, b]) => {
          const d = theta[a][j] - theta[b][j];
          return { a: study.modalities[a], b: study.modalities[b], ...interval(d, se, null, twoSidedP(d / se, null)) };
        }),
      };
    }),
  };

  // Random readers, fixed cases: the conventional modality x reader ANOVA of the reader FOMs.
  const ddfR = (t - 1) * (r - 1);
  const rrfc = {
    ...fTest(msTR, ddfR),
    single: msRi.map((ms, i) => interval(modalityFom[i], Math.sqrt(ms / r), r - 1)),
  };

  return {
    fom,
    modalities: study.modalities,
    readers: study.readers,
    cases: c,
    ...(fom === 'auc' ? { normal: study.truth.filter((v) => v === 0).length, abnormal: study.truth.filter((v) => v === 1).length } : {}),
    readerFom: theta,
    modalityFom,
    // OR variance components (ANOVA estimates, which can be negative), for sizing a future study.
    components: {
      varR: (msR - msTR) / t - cov1 + cov3,
      varTR: msTR - varError + cov1 + (cov2 - cov3),
      cov1,
      cov2,
      cov3,
      varError,
    },
    meanSquares: { T: msT, R: msR, TR: msTR, RperModality: msRi },
    rrrc,
    frrc,
    rrfc,
  };
}
