import { join } from 'node:path';
import { log, PATTERN_ISUP, writeFileAtomic } from '../core/index.ts';
import { tilePattern, type TilePredictions } from '../data/index.ts';
import { patternAgreement, patternAgreementMarkdown, type MetricsReport, type PatternTile } from '../eval/index.ts';

/**
 * patterns.json and patterns.md beside a pattern model's metrics: its tiles' agreement with the masks,
 * on the slides of the evaluation set (a dataset tiled without pattern masks has none: nothing written).
 */
export async function writePatternAgreement(
  out: string,
  p: TilePredictions,
  report: MetricsReport,
  options: { resamples?: number; seed?: number },
  source: string,
): Promise<void> {
  const inSet = new Set(report.evaluationSet.slides);
  const k = p.k;
  const tiles: PatternTile[] = [];
  p.tiles.forEach((t, i) => {
    const truth = tilePattern(t);
    if (truth === undefined || !inSet.has(t.slideId)) return;
    tiles.push({ slideId: t.slideId, patientId: t.patientId, truth, probs: PATTERN_ISUP.map((c) => p.probs[i * k + c]) });
  });
  if (!tiles.length) {
    log.info(`${source}: no tile of the evaluation set has a pattern mask; no pattern agreement (tile with --mask-scheme)`);
    return;
  }
  const a = patternAgreement(tiles, { resamples: options.resamples ?? 1000, seed: options.seed ?? 1 });
  const json = JSON.stringify(a, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  await writeFileAtomic(join(out, 'patterns.json'), `${json}\n`);
  await writeFileAtomic(join(out, 'patterns.md'), patternAgreementMarkdown(a, source));
  log.info(
    `patterns against the masks: tile accuracy ${a.accuracy.value.toFixed(3)}, kappa ${a.kappa.value.toFixed(3)} on ${a.tiles} tiles`,
  );
}
