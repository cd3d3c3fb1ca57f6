import type { PatientInfo } from './splits.ts';
import type { TileDatasetIndex } from './tileDataset.ts';
import { indexTable, queryRows, whereClause, type TileFilter } from './tileIndex.ts';

/** Tiles and slides of one value of a column (a site, a scanner, a grade, an anomaly kind). */
export interface TileCount {
  tiles: number;
  slides: number;
}

export interface DatasetSummary {
  tiles: number;
  slides: number;
  patients: number;
  bySite: Record<string, TileCount>;
  byScanner: Record<string, TileCount>;
  byGrade: Record<string, TileCount>;
  byAnomaly: Record<string, TileCount>;
  /** Tiles by the majority tissue class of their label mask (empty when no slide had a mask). */
  byMaskClass: Record<string, TileCount>;
}

/**
 * A tile's majority tissue class from its mask shares, in SQL: benign, Gleason 3/4/5 (ties to the
 * higher pattern, then to cancer over benign), 'cancer (no pattern)' for Karolinska's masks,
 * 'background' where the mask marks no tissue, 'no mask' for slides without one.
 */
export const MASK_CLASS_SQL = `CASE
  WHEN mask_benign IS NULL THEN 'no mask'
  WHEN mask_benign + mask_cancer = 0 THEN 'background'
  WHEN mask_g3 IS NULL THEN CASE WHEN mask_cancer >= mask_benign THEN 'cancer (no pattern)' ELSE 'benign' END
  WHEN mask_g5 >= greatest(mask_benign, mask_g3, mask_g4) THEN 'gleason 5'
  WHEN mask_g4 >= greatest(mask_benign, mask_g3) THEN 'gleason 4'
  WHEN mask_g3 >= mask_benign THEN 'gleason 3'
  ELSE 'benign' END`;

/**
 * Counts of a dataset's tiles, slides and patients, per site, scanner, grade and anomaly, computed inside
 * DuckDB on the Parquet index: no row reaches JavaScript, so a cohort of 10^7 tiles costs what 10^5 do.
 */
export async function summariseDataset(ds: TileDatasetIndex, filter: TileFilter = {}): Promise<DatasetSummary> {
  const from = `${indexTable(ds.index)} ${whereClause(filter)}`;
  const [[tiles, slides, patients]] = await queryRows(
    `SELECT count(*)::BIGINT, count(DISTINCT slide_id)::BIGINT, count(DISTINCT patient_id)::BIGINT FROM ${from}`,
    ds.index,
  );
  const by = async (expr: string): Promise<Record<string, TileCount>> => {
    const rows = await queryRows(
      `SELECT ${expr} AS k, count(*)::BIGINT, count(DISTINCT slide_id)::BIGINT FROM ${from} GROUP BY k`,
      ds.index,
    );
    return Object.fromEntries(
      rows
        .map(([k, t, s]) => [String(k), { tiles: Number(t), slides: Number(s) }] as const)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  };
  return {
    tiles: Number(tiles),
    slides: Number(slides),
    patients: Number(patients),
    bySite: await by('site'),
    byScanner: await by('scanner'),
    byGrade: await by(`coalesce(grade::VARCHAR, 'unlabelled')`),
    byAnomaly: await by(`CASE WHEN anomaly = '' THEN 'none' ELSE anomaly END`),
    byMaskClass: ds.meta.maskScheme ? await by(MASK_CLASS_SQL) : {},
  };
}

/**
 * One row per patient, as patientsOf gives from tiles (stratum = highest grade, the site of the
 * patient's first tile, every site), aggregated in DuckDB: what a split of 10^4 patients needs, without
 * the 10^7 tiles.
 */
export async function patientsOfDataset(ds: TileDatasetIndex): Promise<PatientInfo[]> {
  const rows = await queryRows(
    `SELECT patient_id, max(grade), arg_min(site, file_row_number), count(DISTINCT slide_id)::BIGINT, count(*)::BIGINT, list(DISTINCT site ORDER BY site)
     FROM ${indexTable(ds.index)} GROUP BY patient_id`,
    ds.index,
  );
  return rows
    .map(([patientId, maxGrade, site, slides, tiles, sites]) => ({
      patientId: String(patientId),
      stratum: maxGrade === null ? 'none' : String(maxGrade),
      site: String(site),
      sites: (sites as string[]).map(String),
      slides: Number(slides),
      tiles: Number(tiles),
    }))
    .sort((a, b) => (a.patientId < b.patientId ? -1 : a.patientId > b.patientId ? 1 : 0));
}
