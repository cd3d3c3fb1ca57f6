import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { pandaMaskScheme, type MaskScheme } from './labelMasks.ts';
import { InputError, isupFromGleason, ManifestError, nottinghamGrade, parseGleasonScore, type Task } from '../core/index.ts';

/** Who a slide belongs to and what it is labelled: carried from the manifest to every tile. */
export interface SlideIdentity {
  slideId: string;
  patientId: string;
  site: string;
  scanner: string;
  /** ISUP grade group (prostate) or Nottingham grade (breast); undefined for unlabelled slides. */
  grade?: number;
  /** Label columns as they go into tiles.csv (isup_grade, gleason_score, nottingham_grade, ...). */
  labels: Record<string, string>;
  /** Anomaly class for OOD work ('' when in-distribution). */
  anomaly: string;
}

export interface SlideRecord extends SlideIdentity {
  path: string;
  /** Microns per pixel from the manifest, overriding the slide's own when given. */
  mpp?: number;
  /** Grades from several raters (columns rater_*), for agreement analysis. */
  raters: Record<string, number>;
  /**
   * A label mask of the slide (column mask_path, relative to the manifest), same size as level 0, value
   * in the first channel: gradelab's synthetic slides write PANDA Radboud's values with 6 for anomalies.
   */
  maskPath?: string;
  /**
   * How the mask's values name tissue: PANDA's provider's (Radboud or Karolinska, from data_provider);
   * absent for a manifest's own masks, which take `gradelab tile --mask-scheme`.
   */
  maskScheme?: MaskScheme;
}

export interface Manifest {
  path: string;
  task: Task;
  format: 'panda' | 'prostate' | 'breast' | 'unlabelled';
  records: SlideRecord[];
  labelColumns: string[];
}

export interface ReadManifestOptions {
  /** Where PANDA image_ids are looked up; default: beside the manifest and in train_images/. */
  imagesDir?: string;
  /** Task for manifests without label columns. */
  task?: Task;
  /** Keep rows whose gleason_score and isup_grade disagree (warns instead of failing). */
  allowLabelMismatch?: boolean;
  /** Do not check that slide files exist (used to inspect a manifest without its slides). */
  skipPathCheck?: boolean;
  onWarning?: (message: string) => void;
}

const PANDA_EXTENSIONS = ['.tiff', '.tif', '.svs'];

function intIn(text: string, lo: number, hi: number): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  const v = Number(t);
  return v >= lo && v <= hi ? v : undefined;
}

/**
 * Reads a slide manifest: PANDA's train.csv as published (image_id, data_provider, isup_grade,
 * gleason_score), or a CSV with a path column (resolved relative to the manifest) and prostate
 * (isup_grade / gleason_score) or breast (nottingham_grade, optional tubules, pleomorphism, mitoses)
 * labels; optional patient_id, site, scanner, anomaly, mpp and rater_* columns. Errors name the line.
 */
export function readManifest(path: string, options: ReadManifestOptions = {}): Manifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${path}: manifest not found` : `${path}: cannot read manifest (${code})`);
  }
  if (text.trim() === '') throw new ManifestError(path, undefined, 'manifest is empty');
  let rows: string[][];
  try {
    rows = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: false, trim: true });
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new ManifestError(path, e.lines, `not valid CSV: ${e.message.replace(/^Invalid Record Length: /, '')}`);
  }
  const header = rows[0].map((h) => h.toLowerCase());
  const col = (name: string) => header.indexOf(name);
  const has = (name: string) => col(name) >= 0;
  const dupe = header.find((h, i) => header.indexOf(h) !== i);
  if (dupe) throw new ManifestError(path, 1, `column "${dupe}" appears twice`);
  if (rows.length < 2) throw new ManifestError(path, undefined, 'manifest has a header but no rows');

  const isPanda = has('image_id') && has('isup_grade') && !has('path');
  if (!isPanda && !has('path')) {
    throw new ManifestError(path, 1, `missing column "path" (or PANDA's image_id, isup_grade); columns are: ${header.join(', ')}`);
  }
  if (isPanda && !has('gleason_score')) throw new ManifestError(path, 1, 'PANDA manifest is missing column "gleason_score"');
  const breast = has('nottingham_grade');
  const prostate = has('isup_grade') || has('gleason_score');
  if (breast && prostate)
    throw new ManifestError(path, 1, 'manifest has both prostate (isup_grade/gleason_score) and breast (nottingham_grade) labels');
  const task: Task = breast ? 'breast' : prostate ? 'prostate' : (options.task ?? 'prostate');
  const format: Manifest['format'] = isPanda ? 'panda' : breast ? 'breast' : prostate ? 'prostate' : 'unlabelled';
  const raterColumns = header.filter((h) => h.startsWith('rater_'));
  // Rater grades travel with the labels into tiles.csv, for agreement analysis downstream.
  const labelColumns = [
    ...(breast ? ['nottingham_grade', ...['tubules', 'pleomorphism', 'mitoses'].filter(has)] : ['isup_grade', 'gleason_score'].filter(has)),
    ...raterColumns,
  ];

  const base = dirname(resolve(path));
  const searchDirs = options.imagesDir ? [resolve(options.imagesDir)] : [base, join(base, 'train_images')];
  const records: SlideRecord[] = [];
  const ids = new Map<string, number>();
  const warn = options.onWarning ?? (() => undefined);

  for (let r = 1; r < rows.length; r++) {
    const line = r + 1;
    const row = rows[r];
    const get = (name: string) => (has(name) ? (row[col(name)] ?? '').trim() : '');
    const fail = (problem: string): never => {
      throw new ManifestError(path, line, problem);
    };
    let slidePath: string;
    let slideId: string;
    if (isPanda) {
      slideId = get('image_id');
      if (!slideId) fail('empty image_id');
      const found = searchDirs.flatMap((d) => PANDA_EXTENSIONS.map((e) => join(d, slideId + e))).find((p) => existsSync(p));
      if (!found && !options.skipPathCheck)
        fail(
          `no slide file for image_id "${slideId}" in ${searchDirs.join(' or ')} (looked for ${PANDA_EXTENSIONS.join(', ')}; use --images DIR)`,
        );
      slidePath = found ?? join(searchDirs[0], `${slideId}.tiff`);
    } else {
      const p = get('path');
      if (!p) fail('empty path');
      slidePath = isAbsolute(p) ? p : resolve(base, p);
      slideId = get('slide_id') || get('image_id') || p.replace(/^.*[\\/]/, '').replace(/\.[^.]+$/, '');
      if (!options.skipPathCheck) {
        if (!existsSync(slidePath)) fail(`slide file does not exist: ${slidePath}`);
        if (!statSync(slidePath).isFile()) fail(`slide path is not a file: ${slidePath}`);
      }
    }
    if (ids.has(slideId)) fail(`slide id "${slideId}" already used on line ${ids.get(slideId)}`);
    ids.set(slideId, line);

    const labels: Record<string, string> = {};
    let grade: number | undefined;
    if (task === 'prostate' && prostate) {
      const isupText = get('isup_grade');
      const gsText = get('gleason_score');
      let isup: number | undefined;
      if (has('isup_grade') && isupText !== '') {
        isup = intIn(isupText, 0, 5);
        if (isup === undefined) fail(`isup_grade "${isupText}" is not an integer 0-5`);
      }
      if (has('gleason_score') && gsText !== '') {
        const gs = parseGleasonScore(gsText);
        if (!gs) fail(`gleason_score "${gsText}" is not "P+S", "0+0" or "negative"`);
        let fromGs: number;
        try {
          fromGs = isupFromGleason(gs!.primary, gs!.secondary);
        } catch (err) {
          fail(`gleason_score "${gsText}": ${(err as Error).message}`);
        }
        if (isup === undefined) isup = fromGs!;
        else if (isup !== fromGs!) {
          const msg = `gleason_score ${gsText} means ISUP grade ${fromGs!} but isup_grade is ${isup}`;
          if (!options.allowLabelMismatch) fail(`${msg} (pass --allow-label-mismatch to keep isup_grade)`);
          warn(`${path}, line ${line}: ${msg}; keeping isup_grade`);
        }
      }
      grade = isup;
      labels.isup_grade = isup === undefined ? '' : String(isup);
      if (has('gleason_score')) labels.gleason_score = gsText;
    } else if (task === 'breast' && breast) {
      const gText = get('nottingham_grade');
      if (gText !== '') {
        grade = intIn(gText, 1, 3);
        if (grade === undefined) fail(`nottingham_grade "${gText}" is not 1, 2 or 3`);
      }
      labels.nottingham_grade = gText;
      const comps: number[] = [];
      for (const c of ['tubules', 'pleomorphism', 'mitoses']) {
        if (!has(c)) continue;
        const t = get(c);
        labels[c] = t;
        if (t === '') continue;
        const v = intIn(t, 1, 3);
        if (v === undefined) fail(`${c} "${t}" is not 1, 2 or 3`);
        comps.push(v!);
      }
      if (comps.length === 3 && grade !== undefined) {
        const g = nottinghamGrade(comps[0], comps[1], comps[2]);
        if (g !== grade)
          fail(
            `tubules+pleomorphism+mitoses = ${comps[0] + comps[1] + comps[2]} means Nottingham grade ${g} but nottingham_grade is ${grade}`,
          );
      }
    }

    const raters: Record<string, number> = {};
    for (const rc of raterColumns) {
      const t = get(rc);
      if (t === '') continue;
      const v = task === 'prostate' ? intIn(t, 0, 5) : intIn(t, 1, 3);
      if (v === undefined) fail(`${rc} "${t}" is not a valid ${task === 'prostate' ? 'ISUP grade 0-5' : 'Nottingham grade 1-3'}`);
      raters[rc.slice('rater_'.length)] = v!;
      labels[rc] = t;
    }

    let mpp: number | undefined;
    if (has('mpp') && get('mpp') !== '') {
      mpp = Number(get('mpp'));
      if (!Number.isFinite(mpp) || mpp <= 0 || mpp > 100) fail(`mpp "${get('mpp')}" is not a positive number of microns per pixel`);
    }

    let maskPath: string | undefined;
    let maskScheme: MaskScheme | undefined;
    if (isPanda) {
      // PANDA's label masks (train_label_masks/ID_mask.tiff) where they are: most slides have one, some not.
      const masks = [
        join(base, 'train_label_masks'),
        ...(options.imagesDir ? [join(dirname(resolve(options.imagesDir)), 'train_label_masks')] : []),
      ];
      maskPath = masks.map((d) => join(d, `${slideId}_mask.tiff`)).find((p) => existsSync(p));
      maskScheme = maskPath ? pandaMaskScheme(get('data_provider')) : undefined;
      if (maskPath && !maskScheme) maskPath = undefined;
    } else if (has('mask_path') && get('mask_path') !== '') {
      const m = get('mask_path');
      maskPath = isAbsolute(m) ? m : resolve(base, m);
      if (!options.skipPathCheck && !existsSync(maskPath)) fail(`mask file does not exist: ${maskPath}`);
    }

    records.push({
      slideId,
      path: slidePath,
      maskPath,
      maskScheme,
      patientId: get('patient_id') || slideId,
      site: get('site') || get('data_provider') || 'unknown',
      scanner: get('scanner') || 'unknown',
      grade,
      labels,
      anomaly: get('anomaly'),
      mpp,
      raters,
    });
  }
  return { path, task, format, records, labelColumns };
}
