import { DEFAULT_PATTERN_RULE, gleasonFromAreas, type PatternRule } from '../core/index.ts';
import type { TileDatasetIndex } from './tileDataset.ts';
import { indexTable, queryRows } from './tileIndex.ts';

/** A slide's grade as its label mask draws it, beside the grade its manifest states. */
export interface MaskGrade {
  slideId: string;
  /** The manifest's ISUP grade group (undefined for an unlabelled slide). */
  label?: number;
  /** Primary + secondary and grade group from the pattern areas of the slide's tiles (ISUP 2014 rules). */
  gleason: string;
  fromMask: number;
}

/**
 * Every slide whose mask names Gleason patterns, graded from the pattern areas of its tiles (the sums of
 * their mask shares, summed in DuckDB) by the ISUP rules: a check of masks against labels before a
 * pattern model trains on them (PANDA's Radboud masks were drawn by a model and corrected, so some
 * disagree with the slide's label). Slides without patterns (Karolinska's masks, no mask) are left out.
 */
export async function maskGrades(ds: TileDatasetIndex, rule: PatternRule = DEFAULT_PATTERN_RULE): Promise<MaskGrade[]> {
  if (!ds.meta.maskScheme) return [];
  const rows = await queryRows(
    `SELECT slide_id, any_value(grade), sum(mask_benign), sum(mask_g3), sum(mask_g4), sum(mask_g5)
     FROM ${indexTable(ds.index)} WHERE mask_g3 IS NOT NULL GROUP BY slide_id ORDER BY min(file_row_number)`,
    ds.index,
  );
  return rows.map(([slideId, grade, benign, g3, g4, g5]) => {
    const g = gleasonFromAreas({ benign: Number(benign), g3: Number(g3), g4: Number(g4), g5: Number(g5) }, rule);
    return {
      slideId: String(slideId),
      label: grade === null ? undefined : Number(grade),
      gleason: `${g.primary}+${g.secondary}`,
      fromMask: g.isup,
    };
  });
}

/** One line for dataset info: how many labelled slides' masks give their label, and the first that do not. */
export function describeMaskGrades(grades: readonly MaskGrade[]): string {
  const labelled = grades.filter((g) => g.label !== undefined);
  const differ = labelled.filter((g) => g.fromMask !== g.label);
  const named = differ
    .slice(0, 5)
    .map((g) => `${g.slideId} (label ${g.label}, mask ${g.gleason} = ${g.fromMask})`)
    .join(', ');
  return `masks vs labels: the pattern areas give the slide's grade group on ${labelled.length - differ.length} of ${labelled.length} labelled slides${differ.length ? `; not on ${named}${differ.length > 5 ? ', ...' : ''}` : ''}`;
}
