/**
 * Grading rules shared by manifests, the synthetic generator and evaluation.
 * ISUP grade group from Gleason primary+secondary (Epstein 2016): 3+3=1, 3+4=2, 4+3=3, 4+4/3+5/5+3=4,
 * 4+5/5+4/5+5=5, benign=0. Nottingham (Elston & Ellis 1991): three components scored 1-3, sum 3-5 is
 * grade 1, 6-7 grade 2, 8-9 grade 3.
 */
export function isupFromGleason(primary: number, secondary: number): number {
  if (primary === 0 && secondary === 0) return 0;
  if (![3, 4, 5].includes(primary) || ![3, 4, 5].includes(secondary)) {
    throw new RangeError(`Gleason patterns must be 3, 4 or 5 (or 0+0 for benign), got ${primary}+${secondary}`);
  }
  const sum = primary + secondary;
  if (sum === 6) return 1;
  if (sum === 7) return primary === 3 ? 2 : 3;
  if (sum === 8) return 4;
  return 5;
}

/** Parses "3+4", "negative" or "0+0" (PANDA writes benign both ways, by provider). */
export function parseGleasonScore(text: string): { primary: number; secondary: number } | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'negative' || t === '0+0') return { primary: 0, secondary: 0 };
  const m = /^([0-9])\s*\+\s*([0-9])$/.exec(t);
  if (!m) return undefined;
  return { primary: Number(m[1]), secondary: Number(m[2]) };
}

export function nottinghamGrade(tubules: number, pleomorphism: number, mitoses: number): number {
  for (const v of [tubules, pleomorphism, mitoses]) {
    if (![1, 2, 3].includes(v)) throw new RangeError(`Nottingham component scores must be 1, 2 or 3, got ${v}`);
  }
  const sum = tubules + pleomorphism + mitoses;
  return sum <= 5 ? 1 : sum <= 7 ? 2 : 3;
}

export type Task = 'prostate' | 'breast';

/** Grade classes per task: ISUP 0-5 for prostate, Nottingham 1-3 for breast. */
export function gradeClasses(task: Task): number[] {
  return task === 'prostate' ? [0, 1, 2, 3, 4, 5] : [1, 2, 3];
}
