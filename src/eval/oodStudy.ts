import type { TileRow } from '../data/index.ts';
import { aggregateScores } from '../ood/index.ts';
import { oodMetrics, type OodMetrics } from './oodEval.ts';

export interface OodStudyInput {
  /** In-distribution tiles (a test partition without anomalies) and their scores per detector. */
  idTiles: readonly TileRow[];
  /** Tiles of the OOD slides (anomalous slides, or a whole OOD dataset) and their scores. */
  oodTiles: readonly TileRow[];
  scores: Map<string, { id: Float64Array; ood: Float64Array }>;
  /** A tile is OOD when its mask marks at least this share anomalous (default 0.5). */
  tileThreshold?: number;
  /** Slide score: mean of the top-k tile scores. */
  topK: number;
  /** near / far for an anomaly class. */
  groupOf: (anomaly: string) => string;
  resamples: number;
  seed: number;
}

export interface LevelMetrics {
  tile: OodMetrics | null;
  slide: OodMetrics;
}

export interface DetectorStudy {
  all: LevelMetrics;
  groups: Record<string, LevelMetrics>;
}

export interface OodStudy {
  /** How tiles were labelled OOD: by their own mask share, or (no masks) by their slide's label. */
  tileTruth: 'mask' | 'slide';
  tileThreshold: number;
  oodTilesUsed: number;
  /** Tiles of OOD slides left out at tile level: ambiguous (0 < share < threshold) or clean (share 0). */
  tilesExcluded: number;
  detectors: Record<string, DetectorStudy>;
}

/**
 * OpenOOD's metrics per detector, for all OOD, each anomaly class and near/far, at tile and slide level.
 * Tile level uses each tile's own truth when the dataset records it (the share of the tile its label
 * mask marks anomalous): at least `tileThreshold` is OOD, tiles of OOD slides below it are left out;
 * without masks every tile of an OOD slide counts as OOD (which understates tile-level detection).
 * Slide level scores a slide by its top-k tiles, whatever the tile truth. CIs by patient bootstrap.
 */
export function oodStudy(input: OodStudyInput): OodStudy {
  const thr = input.tileThreshold ?? 0.5;
  const hasMask = input.oodTiles.length > 0 && input.oodTiles.every((t) => !t.anomaly || t.anomalyFraction !== undefined);
  const isOodTile = (t: TileRow) => (hasMask && t.anomaly ? t.anomalyFraction! >= thr : true);
  const tileIdx = input.oodTiles.map((t, i) => (isOodTile(t) ? i : -1)).filter((i) => i >= 0);
  const groupsOf = (t: TileRow) => (t.anomaly ? [t.anomaly, input.groupOf(t.anomaly)] : ['unlabelled']);
  const groups = [...new Set(input.oodTiles.flatMap(groupsOf))].sort();
  const opts = { resamples: input.resamples, seed: input.seed };
  const pat = new Map([...input.idTiles, ...input.oodTiles].map((t) => [t.slideId, t.patientId]));
  const detectors: Record<string, DetectorStudy> = {};
  for (const [name, { id, ood }] of input.scores) {
    const tileLevel = (idx: number[]): OodMetrics | null => {
      const use = idx.filter((i) => isOodTile(input.oodTiles[i]));
      if (!use.length) return null;
      const scores = Float64Array.from([...id, ...use.map((i) => ood[i])]);
      const labels = Int32Array.from([...Array(id.length).fill(0), ...use.map(() => 1)]);
      const patients = [...input.idTiles.map((t) => t.patientId), ...use.map((i) => `ood:${input.oodTiles[i].patientId}`)];
      return oodMetrics(labels, scores, patients, opts);
    };
    const slideLevel = (idx: number[]): OodMetrics => {
      const idS = aggregateScores(
        id,
        input.idTiles.map((t) => t.slideId),
        'topk',
        { k: input.topK },
      );
      const oodS = aggregateScores(
        idx.map((i) => ood[i]),
        idx.map((i) => input.oodTiles[i].slideId),
        'topk',
        { k: input.topK },
      );
      const labels = Int32Array.from([...[...idS.keys()].map(() => 0), ...[...oodS.keys()].map(() => 1)]);
      return oodMetrics(
        labels,
        Float64Array.from([...idS.values(), ...oodS.values()]),
        [...idS.keys(), ...oodS.keys()].map((s) => pat.get(s)!),
        opts,
      );
    };
    const all = input.oodTiles.map((_, i) => i);
    const byGroup: Record<string, LevelMetrics> = {};
    for (const g of groups) {
      const idx = all.filter((i) => groupsOf(input.oodTiles[i]).includes(g));
      byGroup[g] = { tile: tileLevel(idx), slide: slideLevel(idx) };
    }
    detectors[name] = { all: { tile: tileLevel(all), slide: slideLevel(all) }, groups: byGroup };
  }
  return {
    tileTruth: hasMask ? 'mask' : 'slide',
    tileThreshold: thr,
    oodTilesUsed: tileIdx.length,
    tilesExcluded: input.oodTiles.length - tileIdx.length,
    detectors,
  };
}

/** For each anomaly class (and near / far), the detector with the highest slide-level AUROC. */
export function bestDetectorPerGroup(study: OodStudy): Record<string, { detector: string; slideAuroc: number; tileAuroc: number | null }> {
  const out: Record<string, { detector: string; slideAuroc: number; tileAuroc: number | null }> = {};
  for (const [name, d] of Object.entries(study.detectors)) {
    for (const [g, m] of Object.entries(d.groups)) {
      const v = m.slide.auroc.value;
      if (Number.isFinite(v) && (!out[g] || v > out[g].slideAuroc))
        out[g] = { detector: name, slideAuroc: v, tileAuroc: m.tile?.auroc.value ?? null };
    }
  }
  return out;
}
