import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { InputError, writeFileAtomic } from '../core/index.ts';
import type { PredictionRow } from '../metrics/index.ts';

export type { PredictionRow };

export interface Predictions {
  path: string;
  k: number;
  rows: PredictionRow[];
}

const REQUIRED = ['slide_id', 'patient_id', 'site', 'scanner', 'label', 'pred'];
const KNOWN = new Set([...REQUIRED, 'uncertainty', 'ood_score', 'ood_flag']);
const SUM_TOLERANCE = 1e-3;

export function readPredictions(path: string): Predictions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: predictions file not found` : `${path}: cannot read (${code})`);
  }
  if (!text.trim()) throw new InputError(`${path}: empty file`);
  let rows: string[][];
  try {
    rows = parse(text, { bom: true, skip_empty_lines: true, trim: true });
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new InputError(
      `${path}${e.lines ? `, row ${e.lines}` : ''}: not valid CSV: ${e.message.replace(/^Invalid Record Length: /, '')}`,
    );
  }
  const header = rows[0];
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length)
    throw new InputError(
      `${path}: missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (columns are: ${header.join(', ')})`,
    );
  const probCols = header.filter((h) => /^prob_\d+$/.test(h)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const k = probCols.length;
  if (k < 2) throw new InputError(`${path}: needs probability columns prob_0..prob_K-1 (K >= 2), found ${k}`);
  probCols.forEach((c, i) => {
    if (c !== `prob_${i}`)
      throw new InputError(`${path}: probability columns must be prob_0..prob_${k - 1} without gaps (found ${c} where prob_${i} belongs)`);
  });
  if (rows.length < 2) throw new InputError(`${path}: header but no rows`);
  const col = (n: string) => header.indexOf(n);
  const raterCols = header.filter((h) => h.startsWith('rater_'));
  const extraCols = header.filter((h) => !KNOWN.has(h) && !probCols.includes(h) && !raterCols.includes(h));
  const out: PredictionRow[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    const at = `${path}, row ${r + 1}`;
    const get = (n: string) => row[col(n)] ?? '';
    const classIndex = (name: string, text: string): number => {
      if (!/^\d+$/.test(text) || Number(text) >= k) throw new InputError(`${at}: ${name} "${text}" is not a class index 0-${k - 1}`);
      return Number(text);
    };
    const probs = probCols.map((c) => {
      const v = Number(row[col(c)]);
      if (row[col(c)] === '' || !Number.isFinite(v) || v < 0 || v > 1)
        throw new InputError(`${at}: ${c} "${row[col(c)]}" is not a probability in [0, 1]`);
      return v;
    });
    const sum = probs.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > SUM_TOLERANCE) throw new InputError(`${at}: probabilities sum to ${sum.toFixed(4)}, not 1`);
    const optionalNumber = (name: string) => {
      if (col(name) < 0 || get(name) === '') return undefined;
      const v = Number(get(name));
      if (!Number.isFinite(v)) throw new InputError(`${at}: ${name} "${get(name)}" is not a number`);
      return v;
    };
    const raters: Record<string, number> = {};
    for (const rc of raterCols) if (row[col(rc)] !== '') raters[rc.slice(6)] = classIndex(rc, row[col(rc)]);
    const slideId = get('slide_id');
    if (!slideId) throw new InputError(`${at}: empty slide_id`);
    out.push({
      slideId,
      patientId: get('patient_id') || slideId,
      site: get('site') || 'unknown',
      scanner: get('scanner') || 'unknown',
      label: get('label') === '' ? undefined : classIndex('label', get('label')),
      pred: classIndex('pred', get('pred')),
      probs,
      uncertainty: optionalNumber('uncertainty'),
      oodScore: optionalNumber('ood_score'),
      oodFlag: col('ood_flag') >= 0 && get('ood_flag') !== '' ? ['1', 'true', 'yes'].includes(get('ood_flag').toLowerCase()) : undefined,
      raters,
      extra: Object.fromEntries(extraCols.map((c) => [c, row[col(c)]])),
    });
  }
  return { path, k, rows: out };
}

export async function writePredictions(path: string, rows: PredictionRow[], k: number): Promise<void> {
  const raterNames = [...new Set(rows.flatMap((r) => Object.keys(r.raters)))].sort();
  const extraNames = [...new Set(rows.flatMap((r) => Object.keys(r.extra)))].sort();
  const hasU = rows.some((r) => r.uncertainty !== undefined);
  const hasOod = rows.some((r) => r.oodScore !== undefined);
  const hasFlag = rows.some((r) => r.oodFlag !== undefined);
  const header = [
    ...REQUIRED,
    ...Array.from({ length: k }, (_, i) => `prob_${i}`),
    ...(hasU ? ['uncertainty'] : []),
    ...(hasOod ? ['ood_score'] : []),
    ...(hasFlag ? ['ood_flag'] : []),
    ...raterNames.map((n) => `rater_${n}`),
    ...extraNames,
  ];
  const body = rows.map((r) => [
    r.slideId,
    r.patientId,
    r.site,
    r.scanner,
    r.label === undefined ? '' : String(r.label),
    String(r.pred),
    ...r.probs.map((p) => p.toFixed(6)),
    ...(hasU ? [r.uncertainty === undefined ? '' : r.uncertainty.toFixed(6)] : []),
    ...(hasOod ? [r.oodScore === undefined ? '' : r.oodScore.toFixed(6)] : []),
    ...(hasFlag ? [r.oodFlag === undefined ? '' : r.oodFlag ? '1' : '0'] : []),
    ...raterNames.map((n) => (r.raters[n] === undefined ? '' : String(r.raters[n]))),
    ...extraNames.map((n) => r.extra[n] ?? ''),
  ]);
  await writeFileAtomic(path, stringify([header, ...body]));
}

/** The predictions files of --shard runs joined into one: the same classes, and no slide (or tile) twice. */
export function mergePredictionFiles(paths: readonly string[]): Predictions {
  const parts = paths.map((f) => readPredictions(f));
  const k = parts[0].k;
  const seen = new Map<string, string>();
  for (const p of parts) {
    if (p.k !== k) throw new InputError(`${p.path}: ${p.k} classes, but ${parts[0].path} has ${k}`);
    for (const r of p.rows) {
      const key = `${r.slideId}|${r.extra.x ?? ''}|${r.extra.y ?? ''}`;
      if (seen.has(key)) throw new InputError(`${p.path}: slide ${r.slideId} is also in ${seen.get(key)}; shards must not overlap`);
      seen.set(key, p.path);
    }
  }
  // Slides in sorted order (the order shards take them in), each slide's rows as its shard wrote them:
  // a single run's order whenever the dataset lists its slides sorted, as PANDA and gradelab synth do.
  const rows = parts.flatMap((p) => p.rows);
  const order = [...new Set(rows.map((r) => r.slideId))].sort();
  const bySlide = new Map(order.map((id) => [id, [] as typeof rows]));
  for (const r of rows) bySlide.get(r.slideId)!.push(r);
  return { path: paths.join(','), k, rows: order.flatMap((id) => bySlide.get(id)!) };
}
