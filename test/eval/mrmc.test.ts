import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { analyseMrmc, readReaderStudy, type ReaderStudy } from '../../src/eval/index.ts';
import { writeModelMeta } from '../../src/core/index.ts';
import { modelMeta, runCli, tempDir } from '../helpers.ts';

const vanDyke = fileURLToPath(new URL('../fixtures/mrmc/vandyke.csv', import.meta.url));
const dir = tempDir();

/** Rounded as OR-DBM MRMC prints a figure: equal to the printed digits. */
const printed = (x: number, digits: number) => Number(x.toFixed(digits));

describe('MRMC: Obuchowski-Rockette with Hillis degrees of freedom, against OR-DBM MRMC 2.5 on the Van Dyke data', () => {
  const a = analyseMrmc(readReaderStudy(vanDyke, 'auc'), 'auc');

  it('reader AUCs, modality means and the OR variance components', () => {
    expect([a.normal, a.abnormal, a.cases]).toEqual([69, 45, 114]);
    const reader = [
      [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066],
      [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169],
    ];
    a.readerFom.forEach((row, i) => row.forEach((v, j) => expect(printed(v, 8)).toBe(reader[i][j])));
    expect(a.modalityFom.map((v) => printed(v, 8))).toEqual([0.89703704, 0.94083736]);
    expect(printed(a.meanSquares.T, 8)).toBe(0.00479617);
    expect(printed(a.meanSquares.R, 8)).toBe(0.0038362);
    expect(printed(a.meanSquares.TR, 8)).toBe(0.00055103);
    expect(a.meanSquares.RperModality.map((v) => printed(v, 8))).toEqual([0.00308263, 0.0013046]);
    const c = a.components;
    expect([c.varR, c.varTR, c.cov1, c.cov2, c.cov3, c.varError].map((v) => printed(v, 8))).toEqual([
      0.001535, 0.0002004, 0.00034661, 0.00034407, 0.00023903, 0.00080229,
    ]);
  });

  it('random readers and cases: F(1, 15.26) = 4.46, p = 0.0517, difference -0.04380 (-0.08796, 0.00036)', () => {
    expect([printed(a.rrrc.F, 2), printed(a.rrrc.ddf, 2), printed(a.rrrc.p, 4)]).toEqual([4.46, 15.26, 0.0517]);
    const d = a.rrrc.differences[0];
    expect([d.a, d.b]).toEqual(['0', '1']);
    expect([d.estimate, d.se, d.lower, d.upper].map((v) => printed(v, 5))).toEqual([-0.0438, 0.02075, -0.08796, 0.00036]);
    expect(a.rrrc.single.map((s) => [printed(s.se, 8), printed(s.df!, 2), printed(s.lower, 8), printed(s.upper, 8)])).toEqual([
      [0.0331736, 12.74, 0.8252236, 0.96885048],
      [0.02156637, 12.71, 0.89413783, 0.98753689],
    ]);
  });

  it('fixed readers: chi-square 5.47595, p = 0.0193, and the per-reader differences', () => {
    expect([printed(a.frrc.chi2, 5), printed(a.frrc.p, 4)]).toEqual([5.47595, 0.0193]);
    const d = a.frrc.differences[0];
    expect([d.se, d.lower, d.upper].map((v) => printed(v, 5))).toEqual([0.01872, -0.08049, -0.00711]);
    expect(a.frrc.single.map((s) => [printed(s.se, 8), printed(s.lower, 8), printed(s.upper, 8)])).toEqual([
      [0.02428971, 0.84943008, 0.94464399],
      [0.01677632, 0.90795637, 0.97371835],
    ]);
    const perReader = a.frrc.perReader.map((r) =>
      [r.differences[0].estimate, r.differences[0].se, r.differences[0].p!].map((v, i) => printed(v, i === 2 ? 4 : 5)),
    );
    expect(perReader).toEqual([
      [-0.02818, 0.02551, 0.2693],
      [-0.04654, 0.0263, 0.0768],
      [-0.01787, 0.03121, 0.5668],
      [-0.02625, 0.01729, 0.129],
      [-0.10016, 0.04406, 0.023],
    ]);
  });

  it('fixed cases: F(1, 4) = 8.70, p = 0.0420, difference (-0.08502, -0.00258)', () => {
    expect([printed(a.rrfc.F, 2), a.rrfc.ddf, printed(a.rrfc.p, 4)]).toEqual([8.7, 4, 0.042]);
    const d = a.rrfc.differences[0];
    expect([d.se, d.lower, d.upper].map((v) => printed(v, 5))).toEqual([0.01485, -0.08502, -0.00258]);
    expect(a.rrfc.single.map((s) => [printed(s.lower, 8), printed(s.upper, 8)])).toEqual([
      [0.82809808, 0.96597599],
      [0.89598936, 0.98568536],
    ]);
  });
});

describe('MRMC on grades', () => {
  /** Three readers grading six cases under two modalities; truth and ratings chosen so the FOMs are known. */
  const study = (): ReaderStudy => {
    const truth = Float64Array.from([0, 1, 2, 3, 4, 5]);
    return {
      modalities: ['unaided', 'aided'],
      readers: ['r1', 'r2', 'r3'],
      cases: ['a', 'b', 'c', 'd', 'e', 'f'],
      truth,
      classes: 6,
      ratings: [
        [Float64Array.from([0, 1, 3, 3, 4, 4]), Float64Array.from([1, 1, 2, 2, 4, 5]), Float64Array.from([0, 2, 2, 3, 3, 5])],
        [Float64Array.from([0, 1, 2, 3, 4, 4]), Float64Array.from([0, 1, 2, 3, 4, 5]), Float64Array.from([0, 1, 2, 3, 3, 5])],
      ],
    };
  };

  it('accuracy is the share graded right, per reader and modality (by hand)', () => {
    const a = analyseMrmc(study(), 'accuracy');
    expect(a.readerFom).toEqual([
      [4 / 6, 4 / 6, 4 / 6],
      [5 / 6, 1, 5 / 6],
    ]);
    expect(a.modalityFom[1] - a.modalityFom[0]).toBeCloseTo(2 / 9, 12);
    expect(a.rrrc.differences[0].estimate).toBeCloseTo(-2 / 9, 12);
  });

  it('a modality that equals the truth has QWK 1, and the study is not mutated', () => {
    const s = study();
    const before = s.ratings.map((m) => m.map((r) => Array.from(r)));
    const a = analyseMrmc(s, 'qwk');
    expect(a.readerFom[1][1]).toBe(1);
    expect(s.ratings.map((m) => m.map((r) => Array.from(r)))).toEqual(before);
  });
});

describe('gradelab mrmc', () => {
  it('prints and writes the analysis of a ratings file', async () => {
    const out = join(dir, 'vd');
    const r = await runCli(['mrmc', '--ratings', vanDyke, '--fom', 'auc', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/random readers and cases: F\(1, 15\.26\) = 4\.46, p = 0\.0517/);
    expect(r.stdout).toMatch(/0 - 1: -0\.04380 \(95% CI -0\.08796 to 0\.00036\)/);
    expect(readFileSync(join(out, 'mrmc.md'), 'utf8')).toMatch(
      /\| 0 - 1 \| -0\.04380 \| 0\.02075 \| 15\.26 \| 0\.0517 \| \(-0\.08796, 0\.00036\) \|/,
    );

    // The report's reader-study section says what the interval shows, and carries no machine's path.
    const model = join(dir, 'model');
    await writeModelMeta(model, modelMeta());
    const rep = await runCli(['report', '--run', model, '--out', join(dir, 'rep'), '--mrmc', out, '--no-track']);
    expect(rep.code, rep.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'rep', 'report.json'), 'utf8'));
    const section = report.sections.find((x: { id: string }) => x.id === 'reader-study');
    expect(section.text[1]).toBe(
      'vandyke.csv: 0 minus 1 AUC (Wilcoxon) -0.044, 95% CI -0.088 to 0.000 (random readers and cases, df 15.3, p = 0.0517): the interval includes 0: these data do not show a difference.',
    );
    expect(section.tables[0].rows.map((row: string[]) => row[0])).toEqual(['0', '1', '0 - 1']);
    expect(readFileSync(join(dir, 'rep', 'report.json'), 'utf8')).not.toContain(dir);
  });

  it('--template lays out the fully crossed study of a predictions file; filled in, it analyses', async () => {
    const preds = join(dir, 'preds.csv');
    const header = 'slide_id,patient_id,site,scanner,label,pred,prob_0,prob_1,prob_2\n';
    writeFileSync(
      preds,
      header +
        ['s1,p1,A,X,0,0,0.8,0.1,0.1', 's2,p2,A,X,1,1,0.1,0.8,0.1', 's3,p3,A,X,2,1,0.1,0.5,0.4', 's4,p4,A,X,2,2,0.1,0.1,0.8'].join('\n'),
    );
    const template = join(dir, 'study.csv');
    const t = await runCli([
      'mrmc',
      '--template',
      template,
      '--predictions',
      preds,
      '--readers',
      'ann,bob',
      '--modalities',
      'alone,with-ai',
    ]);
    expect(t.code, t.stderr).toBe(0);
    const lines = readFileSync(template, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('reader,modality,case,truth,rating');
    expect(lines).toHaveLength(1 + 2 * 2 * 4);
    expect(lines.slice(1, 5)).toEqual(['ann,alone,s1,0,', 'ann,alone,s2,1,', 'ann,alone,s3,2,', 'ann,alone,s4,2,']);
    // Alone, each reader misses one case; with the AI, neither does.
    const filled = lines.slice(1).map((l, i) => {
      const [reader, modality, , truth] = l.split(',');
      const miss = modality === 'alone' && i % 4 === (reader === 'ann' ? 2 : 3);
      return `${l}${miss ? Number(truth) - 1 : truth}`;
    });
    writeFileSync(template, [lines[0], ...filled].join('\n'));
    const a = analyseMrmc(readReaderStudy(template, 'accuracy'), 'accuracy');
    expect(a.modalityFom).toEqual([0.75, 1]);
  });

  it('refuses a study that is not fully crossed, or truth that AUC cannot use, in one line', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'gap.csv',
        'reader,modality,case,truth,rating\nA,x,1,0,1\nA,x,2,1,3\nA,y,1,0,2\nA,y,2,1,4\nB,x,1,0,1\nB,y,1,0,2\nB,y,2,1,5\n',
        /gap\.csv: not fully crossed: reader B has no rating of case 2 under x/,
      ],
      [
        'truth.csv',
        'reader,modality,case,truth,rating\nA,x,1,0,1\nA,y,1,2,1\nB,x,1,0,1\nB,y,1,0,1\n',
        /truth\.csv: line 3: case 1 has truth 2 here and 0 on an earlier line/,
      ],
      ['cols.csv', 'reader,case,truth,rating\nA,1,0,1\n', /cols\.csv: missing column\(s\) modality/],
      [
        'grades.csv',
        'reader,modality,case,truth,rating\nA,x,1,0,1\nA,y,1,0,1\nB,x,1,0,1\nB,y,1,0,2\nA,x,2,2,1\nA,y,2,2,1\nB,x,2,2,1\nB,y,2,2,2\n',
        /grades\.csv: case 2 has truth 2; AUC needs truth 0 \(normal\) or 1 \(abnormal\)/,
      ],
    ];
    for (const [name, text, message] of cases) {
      writeFileSync(join(dir, name), text);
      const r = await runCli(['mrmc', '--ratings', join(dir, name), '--out', join(dir, `o-${name}`)]);
      expect(r.code, name).toBe(2);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(message);
    }
  });
});
