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
}

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
