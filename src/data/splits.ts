import { existsSync } from 'node:fs';
import { z } from 'zod';
import { join } from 'node:path';
import { ConfigError, createRng, DatasetError, groupBy, loadJsonFile, shuffled, writeFileAtomic, type Rng } from '../core/index.ts';
import type { TileDataset, TileRow } from './tileDataset.ts';

export interface PatientInfo {
  patientId: string;
  /** Stratum: the patient's highest grade ('none' when unlabelled). */
  stratum: string;
  /** The site of the patient's first tile. */
  site: string;
  /** Every site the patient's slides come from (sorted). */
  sites: string[];
  slides: number;
  tiles: number;
}

export type Partition = 'train' | 'val' | 'test';

export interface SplitFile {
  version: 1;
  seed: number;
  by: 'patient' | 'site';
  folds: number;
  /** Fold names: "0".."k-1", or site names for leave-one-site-out. */
  foldNames: string[];
  /** Fold of each patient. */
  patientFold: Record<string, number>;
  /** Patients held out as validation within the training part of each fold (leave-one-site-out). */
  valPatients?: Record<string, string[]>;
}

export function patientsOf(tiles: readonly TileRow[]): PatientInfo[] {
  const map = new Map<string, Omit<PatientInfo, 'sites'> & { slideSet: Set<string>; siteSet: Set<string>; maxGrade: number }>();
  for (const t of tiles) {
    let p = map.get(t.patientId);
    if (!p) {
      p = {
        patientId: t.patientId,
        stratum: 'none',
        site: t.site,
        slides: 0,
        tiles: 0,
        slideSet: new Set(),
        siteSet: new Set(),
        maxGrade: -1,
      };
      map.set(t.patientId, p);
    }
    p.tiles++;
    p.slideSet.add(t.slideId);
    p.siteSet.add(t.site);
    if (t.grade !== undefined && t.grade > p.maxGrade) p.maxGrade = t.grade;
  }
  return [...map.values()]
    .map(({ slideSet, siteSet, maxGrade, ...p }) => ({
      ...p,
      sites: [...siteSet].sort(),
      slides: slideSet.size,
      stratum: maxGrade < 0 ? 'none' : String(maxGrade),
    }))
    .sort((a, b) => (a.patientId < b.patientId ? -1 : a.patientId > b.patientId ? 1 : 0));
}

/**
 * Patient-grouped, label-stratified k-fold: patients of each stratum are shuffled (seeded) and dealt to
 * the fold holding fewest of that stratum, ties broken by fewest patients overall, so every fold gets
 * each grade in proportion and no patient is in two folds.
 */
export function stratifiedGroupKFold(patients: readonly PatientInfo[], k: number, rng: Rng): Record<string, number> {
  if (!Number.isInteger(k) || k < 2) throw new ConfigError(`--folds must be an integer of at least 2, got ${k}`);
  if (patients.length < k) throw new ConfigError(`cannot make ${k} folds from ${patients.length} patients`);
  const byStratum = groupBy(patients, (p) => p.stratum);
  const total = new Array<number>(k).fill(0);
  const out: Record<string, number> = {};
  for (const stratum of [...byStratum.keys()].sort()) {
    const perFold = new Array<number>(k).fill(0);
    for (const p of shuffled(byStratum.get(stratum)!, rng.fork(stratum))) {
      let best = 0;
      for (let f = 1; f < k; f++) {
        if (perFold[f] < perFold[best] || (perFold[f] === perFold[best] && total[f] < total[best])) best = f;
      }
      out[p.patientId] = best;
      perFold[best]++;
      total[best]++;
    }
  }
  return out;
}

export interface MakeSplitOptions {
  folds: number;
  seed: number;
  by?: 'patient' | 'site';
}

/** A split of a dataset's patients (patientsOfDataset for an index, patientsOf for tiles in memory). */
export function makeSplit(patients: readonly PatientInfo[], options: MakeSplitOptions): SplitFile {
  const rng = createRng(options.seed);
  if ((options.by ?? 'patient') === 'patient') {
    return {
      version: 1,
      seed: options.seed,
      by: 'patient',
      folds: options.folds,
      foldNames: Array.from({ length: options.folds }, (_, i) => String(i)),
      patientFold: stratifiedGroupKFold(patients, options.folds, rng),
    };
  }
  // Leave-one-site-out: fold i tests on site i; validation patients are a stratified fifth of the rest.
  const sites = [...new Set(patients.map((p) => p.site))].sort();
  if (sites.length < 2)
    throw new ConfigError(`leave-one-site-out needs at least 2 sites, the dataset has ${sites.length} (${sites.join(', ')})`);
  const straddler = patients.find((p) => p.sites.length > 1);
  if (straddler)
    throw new ConfigError(
      `patient ${straddler.patientId} has slides from several sites (${straddler.sites.join(', ')}); leave-one-site-out needs one site per patient`,
    );
  const patientFold: Record<string, number> = {};
  for (const p of patients) patientFold[p.patientId] = sites.indexOf(p.site);
  const valPatients: Record<string, string[]> = {};
  sites.forEach((site, i) => {
    const rest = patients.filter((p) => p.site !== site);
    const inner = stratifiedGroupKFold(rest, Math.min(5, Math.max(2, rest.length)), rng.fork(`val-${site}`));
    valPatients[String(i)] = rest.filter((p) => inner[p.patientId] === 0).map((p) => p.patientId);
  });
  return { version: 1, seed: options.seed, by: 'site', folds: sites.length, foldNames: sites, patientFold, valPatients };
}

/**
 * The partition of a patient for a given test fold: the test fold is held out, the next fold
 * (cyclically) validates, the rest trains; for leave-one-site-out, validation is a stratified share of
 * the other sites' patients.
 */
export function partitionOf(split: SplitFile, patientId: string, testFold: number): Partition {
  const f = split.patientFold[patientId];
  if (f === undefined) throw new ConfigError(`patient ${patientId} is not in the split`);
  if (f === testFold) return 'test';
  if (split.by === 'site') return split.valPatients?.[String(testFold)]?.includes(patientId) ? 'val' : 'train';
  return f === (testFold + 1) % split.folds ? 'val' : 'train';
}

/** The patients of a partition for a test fold: what a dataset is filtered by before its tiles are read. */
export function patientsOfPartition(split: SplitFile, partition: Partition, testFold = 0): string[] {
  checkFold(split, testFold);
  return Object.keys(split.patientFold).filter((p) => partitionOf(split, p, testFold) === partition);
}

function checkFold(split: SplitFile, testFold: number): void {
  if (!Number.isInteger(testFold) || testFold < 0 || testFold >= split.folds) {
    throw new ConfigError(`fold ${testFold} does not exist (the split has folds 0..${split.folds - 1})`);
  }
}

export function tilesOfPartition(ds: TileDataset, split: SplitFile, partition: Partition, testFold = 0): TileRow[] {
  checkFold(split, testFold);
  return ds.tiles.filter((t) => partitionOf(split, t.patientId, testFold) === partition);
}

export async function saveSplit(dir: string, split: SplitFile): Promise<void> {
  await writeFileAtomic(join(dir, 'splits.json'), JSON.stringify(split, null, 2));
}

const splitSchema = z.object({
  version: z.literal(1),
  seed: z.number(),
  by: z.enum(['patient', 'site']),
  folds: z.number().int().min(1),
  foldNames: z.array(z.string()),
  patientFold: z.record(z.string(), z.number().int().min(0)),
  valPatients: z.record(z.string(), z.array(z.string())).optional(),
});

export function hasSplit(dir: string): boolean {
  return existsSync(join(dir, 'splits.json'));
}

/** The dataset's split; a missing one says how to make it, a damaged one is refused (never replaced silently). */
export async function loadSplit(dir: string): Promise<SplitFile> {
  const p = join(dir, 'splits.json');
  if (!existsSync(p)) throw new DatasetError(dir, 'has no splits.json; run `gradelab split DIR --folds 5 --seed 1` first');
  const split = loadJsonFile(p, splitSchema, 'patient split') as SplitFile;
  const bad = Object.entries(split.patientFold).find(([, f]) => f >= split.folds);
  if (bad) throw new DatasetError(p, `patient ${bad[0]} is in fold ${bad[1]}, but the split has ${split.folds} folds`);
  return split;
}

/** Up to n tiles per slide, evenly spread over each slide's tiles (validation, suites, audits). */
export function spreadTilesPerSlide<T extends { slideId: string }>(tiles: readonly T[], perSlide: number): T[] {
  return [...groupBy(tiles, (t) => t.slideId).values()].flatMap((l) =>
    l.length <= perSlide ? l : Array.from({ length: perSlide }, (_, i) => l[Math.floor((i * l.length) / perSlide)]),
  );
}
