import { ConfigError, createRng, isupFromGleason, nottinghamGrade, shuffled, type Rng, type Task } from '../core/index.ts';
import { ANOMALY_KINDS, type AnomalyKind, type LookAlikeStains, type SlideDesign } from './scene.ts';
import { SITES, type SiteProtocol } from './sites.ts';

// What each synthetic slide will be: patient, site, scanner, grade, patterns, anomaly, seed.

export interface SynthOptions {
  task: Task;
  slides: number;
  out: string;
  /** Number of sites (1-6), each with its own stain protocol and scanner. */
  sites?: number;
  /** Slide width in pixels at level 0 (prostate slides are half as tall; breast square). */
  size?: number;
  mpp?: number;
  /** Share of slides carrying a rare anomaly (0-1). */
  anomalies?: number;
  /** The kinds of anomaly the anomalous slides take in turn (default: every kind). */
  anomalyKinds?: AnomalyKind[];
  /**
   * Near-OOD look-alikes' stains: 'matched' maps them onto the slide's tissue's haematoxylin and eosin
   * distributions, so only morphology reveals them; 'natural' keeps their own (dense lymphocytes are
   * darker, mucin paler), which pixel-level quality checks catch by colour.
   */
  lookAlikeStains?: LookAlikeStains;
  seed?: number;
  format?: 'tiff' | 'svs';
  /** Use only these sites (by name), e.g. to make an unseen site's data. */
  siteNames?: string[];
  /** Slides rendered at once in worker threads (default: every core; 1 renders on this thread). */
  workers?: number;
  /** Per rendered tile, when slides render on this thread (workers 1). */
  onTile?: () => void;
  onSlide?: (done: number, total: number, id: string, tiles: number) => void;
}

export interface SynthSlide extends SlideDesign {
  patientId: string;
  site: string;
  scanner: string;
  path: string;
  maskPath: string;
  grade: number;
  gleason?: string;
}

const GLEASON_FOR_ISUP: Record<number, [number, number][]> = {
  0: [[0, 0]],
  1: [[3, 3]],
  2: [[3, 4]],
  3: [[4, 3]],
  4: [
    [4, 4],
    [3, 5],
    [5, 3],
  ],
  5: [
    [4, 5],
    [5, 4],
    [5, 5],
  ],
};

function breastScores(grade: number, rng: Rng): [number, number, number] {
  const all: [number, number, number][] = [];
  for (let t = 1; t <= 3; t++)
    for (let p = 1; p <= 3; p++) for (let m = 1; m <= 3; m++) if (nottinghamGrade(t, p, m) === grade) all.push([t, p, m]);
  return all[rng.int(all.length)];
}

/** Slide designs: patients of 1-3 slides at one site each, grades balanced, anomalies on a seeded share. */
export function designSlides(options: SynthOptions): SynthSlide[] {
  const { task, slides: n } = options;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--slides must be a positive integer, got ${n}`);
  const size = options.size ?? 2048;
  if (!Number.isInteger(size) || size < 512 || size > 200_000) throw new ConfigError(`--size must be an integer 512-200000, got ${size}`);
  const mpp = options.mpp ?? 0.5;
  if (!(mpp >= 0.1 && mpp <= 2)) throw new ConfigError(`--mpp must be between 0.1 and 2, got ${mpp}`);
  const fraction = options.anomalies ?? 0.1;
  if (!(fraction >= 0 && fraction <= 1)) throw new ConfigError(`--anomalies must be between 0 and 1, got ${fraction}`);
  const kinds = options.anomalyKinds ?? ANOMALY_KINDS;
  for (const k of kinds)
    if (!ANOMALY_KINDS.includes(k)) throw new ConfigError(`unknown anomaly kind "${k}"; known: ${ANOMALY_KINDS.join(', ')}`);
  if (kinds.length === 0) throw new ConfigError('--anomaly-kinds needs at least one kind');
  const lookAlikeStains = options.lookAlikeStains ?? 'matched';
  if (!['matched', 'natural'].includes(lookAlikeStains))
    throw new ConfigError(`--look-alike-stains must be matched or natural, got ${lookAlikeStains}`);
  const sites = options.siteNames
    ? options.siteNames.map((name) => {
        const s = SITES.find((x) => x.name === name);
        if (!s) throw new ConfigError(`unknown site "${name}"; known: ${SITES.map((x) => x.name).join(', ')}`);
        return s;
      })
    : SITES.slice(0, options.sites ?? 3);
  if (sites.length < 1 || sites.length > SITES.length) throw new ConfigError(`--sites must be 1-${SITES.length}, got ${options.sites}`);
  const rng = createRng(options.seed ?? 1).fork(`synth-${task}`);
  const classes = task === 'prostate' ? [0, 1, 2, 3, 4, 5] : [1, 2, 3];
  const grades: number[] = [];
  while (grades.length < n) grades.push(...shuffled(classes, rng.fork(`grades-${grades.length}`)));
  const anomalous = new Set(
    shuffled(
      Array.from({ length: n }, (_, i) => i),
      rng.fork('anomalous'),
    ).slice(0, Math.round(n * fraction)),
  );
  const out: SynthSlide[] = [];
  let patient = 0;
  let left = 0;
  let site: SiteProtocol = sites[0];
  let anomalyCount = 0;
  for (let i = 0; i < n; i++) {
    if (left === 0) {
      left = [1, 1, 2, 3][rng.int(4)];
      site = sites[patient % sites.length];
      patient++;
    }
    left--;
    const id = `${task === 'prostate' ? 'p' : 'b'}${String(i).padStart(4, '0')}`;
    const grade = grades[i];
    const r = rng.fork(id);
    const anomaly: AnomalyKind | '' = anomalous.has(i) ? kinds[anomalyCount++ % kinds.length] : '';
    const base = {
      id,
      task,
      width: size,
      height: task === 'prostate' ? Math.round(size / 2) : size,
      mpp,
      seed: `${options.seed ?? 1}/${id}`,
      anomaly,
      lookAlikeStains,
      patientId: `patient-${String(patient).padStart(3, '0')}`,
      site: site.name,
      scanner: site.scanner,
      path: `slides/${id}.${options.format === 'svs' ? 'svs' : 'tiff'}`,
      maskPath: `masks/${id}_mask.tiff`,
      grade,
    };
    if (task === 'prostate') {
      const choices = GLEASON_FOR_ISUP[grade];
      const [primary, secondary] = choices[r.int(choices.length)];
      if (isupFromGleason(primary, secondary) !== grade) throw new Error('unreachable: Gleason table disagrees with the ISUP rule');
      out.push({ ...base, primary, secondary, gleason: grade === 0 ? 'negative' : `${primary}+${secondary}` });
    } else {
      const [tubules, pleomorphism, mitoses] = breastScores(grade, r);
      out.push({ ...base, tubules, pleomorphism, mitoses });
    }
  }
  return out;
}
