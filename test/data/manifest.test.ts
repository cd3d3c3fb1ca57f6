import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/core/index.ts';
import { readManifest } from '../../src/data/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
mkdirSync(join(dir, 'train_images'), { recursive: true });
for (const id of ['a1', 'b2', 'c3', 'd4']) writeFileSync(join(dir, 'train_images', `${id}.tiff`), 'x');
writeFileSync(join(dir, 's1.svs'), 'x');
writeFileSync(join(dir, 's2.svs'), 'x');

function csv(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function expectError(fn: () => unknown, pattern: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ManifestError);
  expect((err as Error).message).toMatch(pattern);
}

describe('PANDA train.csv', () => {
  it('reads the native columns, both benign spellings, and finds slides in train_images/', () => {
    const p = csv(
      'train.csv',
      'image_id,data_provider,isup_grade,gleason_score\na1,karolinska,0,0+0\nb2,radboud,0,negative\nc3,radboud,2,3+4\nd4,karolinska,5,4+5\n',
    );
    const m = readManifest(p);
    expect(m.format).toBe('panda');
    expect(m.task).toBe('prostate');
    expect(m.records.map((r) => r.grade)).toEqual([0, 0, 2, 5]);
    expect(m.records[1].site).toBe('radboud');
    expect(m.records[0].path).toBe(join(dir, 'train_images', 'a1.tiff'));
    expect(m.records[0].patientId).toBe('a1');
  });

  it('checks Gleason against ISUP and names the line', () => {
    const p = csv('bad-isup.csv', 'image_id,data_provider,isup_grade,gleason_score\na1,karolinska,0,0+0\nc3,radboud,3,3+4\n');
    expectError(() => readManifest(p), /bad-isup\.csv, row 3: gleason_score 3\+4 means ISUP grade 2 but isup_grade is 3/);
    const warnings: string[] = [];
    const m = readManifest(p, { allowLabelMismatch: true, onWarning: (w) => warnings.push(w) });
    expect(m.records[1].grade).toBe(3);
    expect(warnings).toHaveLength(1);
  });

  it('a missing slide names the row and where it looked', () => {
    const p = csv('missing.csv', 'image_id,data_provider,isup_grade,gleason_score\nzz,radboud,1,3+3\n');
    expectError(() => readManifest(p), /row 2: no slide file for image_id "zz"/);
  });
});

describe('path manifests', () => {
  it('resolves paths relative to the manifest, with patients, sites, scanners, raters', () => {
    const p = csv(
      'm.csv',
      'path,patient_id,site,scanner,isup_grade,rater_a,rater_b,anomaly\ns1.svs,p1,A,sc1,3,3,4,\ns2.svs,p1,A,sc1,1,1,1,lymphoma\n',
    );
    const m = readManifest(p);
    expect(m.records.map((r) => [r.slideId, r.patientId, r.site, r.scanner, r.grade])).toEqual([
      ['s1', 'p1', 'A', 'sc1', 3],
      ['s2', 'p1', 'A', 'sc1', 1],
    ]);
    expect(m.records[0].raters).toEqual({ a: 3, b: 4 });
    expect(m.records[1].anomaly).toBe('lymphoma');
  });

  it('breast: grade from components must agree', () => {
    const ok = csv('breast.csv', 'path,nottingham_grade,tubules,pleomorphism,mitoses\ns1.svs,2,3,2,1\ns2.svs,3,3,3,2\n');
    const m = readManifest(ok);
    expect(m.task).toBe('breast');
    expect(m.records.map((r) => r.grade)).toEqual([2, 3]);
    const bad = csv('breast-bad.csv', 'path,nottingham_grade,tubules,pleomorphism,mitoses\ns1.svs,1,3,3,3\n');
    expectError(() => readManifest(bad), /row 2: .* = 9 means Nottingham grade 3 but nottingham_grade is 1/);
  });

  it.each([
    ['empty', '', /manifest is empty/],
    ['header-only', 'path,isup_grade\n', /no rows/],
    ['no-path', 'slide,isup_grade\ns1.svs,1\n', /missing column "path"/],
    ['not-there', 'path,isup_grade\nnope.svs,1\n', /row 2: slide file does not exist/],
    ['range', 'path,isup_grade\ns1.svs,6\n', /row 2: isup_grade "6" is not an integer 0-5/],
    ['gleason', 'path,gleason_score\ns1.svs,2+3\n', /row 2: .*3, 4 or 5/],
    ['breast-range', 'path,nottingham_grade\ns1.svs,4\n', /row 2: nottingham_grade "4" is not 1, 2 or 3/],
    ['dupe', 'path,isup_grade\ns1.svs,1\ns1.svs,2\n', /row 3: slide id "s1" already used on line 2/],
    ['ragged', 'path,isup_grade\ns1.svs,1,extra\n', /not valid CSV/],
    ['both', 'path,isup_grade,nottingham_grade\ns1.svs,1,2\n', /both prostate/],
    ['mpp', 'path,isup_grade,mpp\ns1.svs,1,-3\n', /row 2: mpp "-3"/],
  ])('%s: one clear error', (name, text, pattern) => {
    expectError(() => readManifest(csv(`${name}.csv`, text)), pattern);
  });
});
