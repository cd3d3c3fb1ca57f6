import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { InputError, writeFileAtomic } from '../core/index.ts';
import type { MrmcDifference, MrmcInterval, MrmcAnalysis, MrmcFom, ReaderStudy } from './mrmc.ts';

/** The columns of a ratings file: one row per reader, modality and case (RJafroc's CSV layout). */
export const RATINGS_COLUMNS = ['reader', 'modality', 'case', 'truth', 'rating'] as const;

/**
 * Reads a fully crossed reader study: every reader rates every case under every modality once, and a
 * case has one truth. Anything else is one line naming the file and the first problem.
 */
export function readReaderStudy(path: string, fom: MrmcFom): ReaderStudy {
  if (!existsSync(path)) throw new InputError(`${path}: ratings file not found`);
  let rows: Record<string, string>[];
  try {
    rows = parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (err) {
    throw new InputError(`${path}: not valid CSV (${(err as Error).message.split('\n')[0]})`);
  }
  if (!rows.length) throw new InputError(`${path}: no ratings`);
  const missing = RATINGS_COLUMNS.filter((c) => !(c in rows[0]));
  if (missing.length) throw new InputError(`${path}: missing column(s) ${missing.join(', ')} (needs ${RATINGS_COLUMNS.join(', ')})`);
  const modalities = [...new Set(rows.map((r) => r.modality))];
  const readers = [...new Set(rows.map((r) => r.reader))];
  const cases = [...new Set(rows.map((r) => r.case))];
  if (modalities.length < 2) throw new InputError(`${path}: ${modalities.length} modality; an MRMC comparison needs at least 2`);
  if (readers.length < 2) throw new InputError(`${path}: ${readers.length} reader; an MRMC analysis needs at least 2`);
  const mi = new Map(modalities.map((m, i) => [m, i]));
  const ri = new Map(readers.map((r, j) => [r, j]));
  const ci = new Map(cases.map((c, k) => [c, k]));
  const truth = new Float64Array(cases.length).fill(Number.NaN);
  const ratings = modalities.map(() => readers.map(() => new Float64Array(cases.length).fill(Number.NaN)));
  rows.forEach((row, n) => {
    const line = n + 2;
    const t = Number(row.truth);
    const v = Number(row.rating);
    if (row.truth === '' || !Number.isFinite(t)) throw new InputError(`${path}: line ${line}: truth "${row.truth}" is not a number`);
    if (row.rating === '' || !Number.isFinite(v)) throw new InputError(`${path}: line ${line}: rating "${row.rating}" is not a number`);
    const k = ci.get(row.case)!;
    if (!Number.isNaN(truth[k]) && truth[k] !== t)
      throw new InputError(`${path}: line ${line}: case ${row.case} has truth ${t} here and ${truth[k]} on an earlier line`);
    truth[k] = t;
    const cell = ratings[mi.get(row.modality)!][ri.get(row.reader)!];
    if (!Number.isNaN(cell[k]))
      throw new InputError(`${path}: line ${line}: reader ${row.reader} rated case ${row.case} under ${row.modality} twice`);
    cell[k] = v;
  });
  modalities.forEach((m, i) =>
    readers.forEach((r, j) => {
      const k = ratings[i][j].findIndex((v) => Number.isNaN(v));
      if (k >= 0)
        throw new InputError(
          `${path}: not fully crossed: reader ${r} has no rating of case ${cases[k]} under ${m} (every reader rates every case in every modality)`,
        );
    }),
  );
  if (fom === 'auc') {
    const bad = truth.findIndex((t) => t !== 0 && t !== 1);
    if (bad >= 0) throw new InputError(`${path}: case ${cases[bad]} has truth ${truth[bad]}; AUC needs truth 0 (normal) or 1 (abnormal)`);
    if (!truth.includes(0) || !truth.includes(1))
      throw new InputError(`${path}: AUC needs both normal (truth 0) and abnormal (truth 1) cases`);
    return { modalities, readers, cases, truth, ratings };
  }
  // Grades: integers, mapped to class indices from the lowest grade any row names.
  const all = [...truth, ...ratings.flatMap((m) => m.flatMap((r) => [...r]))];
  const bad = all.find((v) => !Number.isInteger(v));
  if (bad !== undefined) throw new InputError(`${path}: ${fom} compares grades, and ${bad} is not an integer grade`);
  const lo = Math.min(...all);
  const shift = (a: Float64Array) => a.map((v) => v - lo);
  return {
    modalities,
    readers,
    cases,
    truth: shift(truth),
    ratings: ratings.map((m) => m.map(shift)),
    classes: Math.max(...all) - lo + 1,
  };
}

const f = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pv = (p: number) => (p < 0.0001 ? '<0.0001' : p.toFixed(4));
const ci = (i: MrmcInterval) => `(${f(i.lower, 5)}, ${f(i.upper, 5)})`;
const diffRow = (d: MrmcDifference) =>
  `| ${d.a} - ${d.b} | ${f(d.estimate, 5)} | ${f(d.se, 5)} | ${d.df === null ? 'z' : f(d.df, 2)} | ${pv(d.p!)} | ${ci(d)} |`;
const DIFF_HEAD = '| comparison | difference | std. error | df | p | 95% CI |\n|---|---|---|---|---|---|';

/** The analysis as Markdown tables, laid out as OR-DBM MRMC prints it. */
export function mrmcMarkdown(a: MrmcAnalysis, source: string): string {
  const name = { auc: 'AUC (Wilcoxon, trapezoidal)', accuracy: 'accuracy (share of cases graded right)', qwk: 'quadratic weighted kappa' }[
    a.fom
  ];
  const cases = a.fom === 'auc' ? `${a.cases} cases (${a.normal} normal, ${a.abnormal} abnormal)` : `${a.cases} cases`;
  const singles = (xs: MrmcInterval[]) =>
    `| modality | FOM | std. error | df | 95% CI |\n|---|---|---|---|---|\n${xs.map((s, i) => `| ${a.modalities[i]} | ${f(s.estimate, 5)} | ${f(s.se, 5)} | ${s.df === null ? 'z' : f(s.df, 2)} | ${ci(s)} |`).join('\n')}`;
  return `# Reader study: Obuchowski-Rockette analysis

${source}: ${a.modalities.length} modalities, ${a.readers.length} readers, ${cases}. Figure of merit: ${name}.
Error covariances by jackknifing cases; denominator degrees of freedom as Hillis (2007).

## Figure of merit by reader

| reader | ${a.modalities.join(' | ')} |
|---|${a.modalities.map(() => '---').join('|')}|
${a.readers.map((r, j) => `| ${r} | ${a.readerFom.map((row) => f(row[j], 5)).join(' | ')} |`).join('\n')}
| **mean** | ${a.modalityFom.map((v) => `**${f(v, 5)}**`).join(' | ')} |

## Random readers and random cases (generalises to both populations)

F(${a.rrrc.ndf}, ${f(a.rrrc.ddf, 2)}) = ${f(a.rrrc.F, 2)}, p = ${pv(a.rrrc.p)}.

${DIFF_HEAD}
${a.rrrc.differences.map(diffRow).join('\n')}

${singles(a.rrrc.single)}

## Fixed readers and random cases (these readers only)

chi-square(${a.frrc.df}) = ${f(a.frrc.chi2, 3)}, p = ${pv(a.frrc.p)}.

${DIFF_HEAD}
${a.frrc.differences.map(diffRow).join('\n')}

${singles(a.frrc.single)}

## Random readers and fixed cases (these cases only)

F(${a.rrfc.ndf}, ${a.rrfc.ddf}) = ${f(a.rrfc.F, 2)}, p = ${pv(a.rrfc.p)}.

${DIFF_HEAD}
${a.rrfc.differences.map(diffRow).join('\n')}

## Variance components (for sizing a future study; ANOVA estimates, which can be negative)

| Var(R) | Var(T*R) | Cov1 | Cov2 | Cov3 | Var(error) |
|---|---|---|---|---|---|
| ${[a.components.varR, a.components.varTR, a.components.cov1, a.components.cov2, a.components.cov3, a.components.varError].map((v) => f(v, 8)).join(' | ')} |
`;
}

/** mrmc.json (every figure) and mrmc.md (the tables) in `out`. */
export async function writeMrmc(out: string, analysis: MrmcAnalysis, source: string): Promise<void> {
  await writeFileAtomic(join(out, 'mrmc.json'), `${JSON.stringify({ format: 'gradelab-mrmc/1', source, ...analysis }, null, 2)}\n`);
  await writeFileAtomic(join(out, 'mrmc.md'), mrmcMarkdown(analysis, source));
}
