import type { TileRow } from '../data/index.ts';
import type { Estimate } from './bootstrap.ts';
import { neighbourRobustness } from './representationMetrics.ts';
import { confounderDecodability } from './shortcutProbe.ts';
import { scanNeighbours } from './typedNeighbours.ts';

/** How separable the new site is from the training data in the model's feature space (croma/PathoROB measures). */
export interface SiteSeparability {
  /** Balanced accuracy of a linear probe telling site tiles from training tiles, out of fold over patients (chance 0.5). */
  decodability: Estimate;
  /**
   * RI of the grade against the source (training or new site) on the labelled sampled tiles: among each
   * tile's nearest neighbours from other patients, the share of typed ones that share its grade rather than
   * its source. Null when the site has no labelled tiles.
   */
  ri: (Estimate & { k: number; support: number }) | null;
}

/**
 * The site's sampled tiles against the training reference tiles, both as the model embeds them: can a
 * linear probe tell them apart, and do the site's tiles sit with training tiles of their grade or with
 * each other? Patients are the groups (a patient's tiles are never each other's neighbours or split
 * across folds); the two datasets' patient ids are kept apart.
 */
export function siteSeparability(
  reference: { tiles: readonly TileRow[]; features: Float32Array },
  site: { tiles: readonly TileRow[]; features: Float32Array },
  d: number,
  options: { resamples: number; seed: number | string },
): SiteSeparability {
  const tiles = [...reference.tiles, ...site.tiles];
  const features = new Float32Array(tiles.length * d);
  features.set(reference.features.subarray(0, reference.tiles.length * d));
  features.set(site.features.subarray(0, site.tiles.length * d), reference.tiles.length * d);
  const source = Int32Array.from(tiles, (_, i) => (i < reference.tiles.length ? 0 : 1));
  const groups = tiles.map((t, i) => `${source[i] ? 'site' : 'training'}:${t.patientId}`);
  const decodability = confounderDecodability(features, d, source, groups, { classes: 2, ...options }).balancedAccuracy;
  const labelled = tiles.flatMap((t, i) => (t.grade !== undefined ? [i] : []));
  if (!labelled.some((i) => source[i] === 1) || !labelled.some((i) => source[i] === 0)) return { decodability, ri: null };
  const classes = [...new Set(labelled.map((i) => tiles[i].grade!))].sort((a, b) => a - b);
  const groupNames = [...new Set(labelled.map((i) => groups[i]))];
  const samples = {
    n: labelled.length,
    d,
    features: Float32Array.from(labelled.flatMap((i) => Array.from(features.subarray(i * d, (i + 1) * d)))),
    labels: Int32Array.from(labelled, (i) => classes.indexOf(tiles[i].grade!)),
    confounders: Int32Array.from(labelled, (i) => source[i]),
    groups: Int32Array.from(labelled, (i) => groupNames.indexOf(groups[i])),
  };
  const kCandidates = [5, 11, 21];
  const r = neighbourRobustness(samples, scanNeighbours(samples, Math.max(...kCandidates), 5), {
    kCandidates,
    classes: classes.length,
    groupNames,
    ...options,
  });
  return { decodability, ri: { ...r.ri, k: r.k, support: r.support } };
}
