import { join } from 'node:path';
import { ConfigError, readModelMeta, requirePixelModel, type ProgressFactory } from '../core/index.ts';
import { openDatasetForModel } from '../data/index.ts';
import type { ModelOpenOptions } from '../engine/index.ts';
import { openModel } from './openModel.ts';
import { auditSite, writeSiteAudit, type SiteAudit } from '../eval/index.ts';

export interface AuditOptions {
  /** The model's training dataset (default: the one its gradelab.json names). */
  trainData?: string;
  /** Tiles sampled for the representation and stain statistics. */
  maxTiles?: number;
  resamples?: number;
  seed?: number;
  engine?: ModelOpenOptions;
  progress?: ProgressFactory;
}

/**
 * Audits a model on a new site's tile dataset before it goes live (eval/audit.ts: every claim with its
 * interval) and writes audit.json, summary.md and the charts into `out`. Refuses a site or training
 * dataset of another task, tile size or resolution than the model's.
 */
export async function auditModel(modelDir: string, siteDir: string, out: string, options: AuditOptions = {}): Promise<SiteAudit> {
  const meta = readModelMeta(modelDir);
  requirePixelModel(modelDir, meta, 'a site audit (it measures stain and representation shift on tiles)');
  const trainData = options.trainData ?? (meta.dataset && join(modelDir, meta.dataset));
  if (!trainData) throw new ConfigError('--train-data is needed (the model records no training dataset)');
  const maxTiles = options.maxTiles ?? 1500;
  if (!Number.isInteger(maxTiles) || maxTiles < 2) throw new ConfigError('--max-tiles must be an integer >= 2');
  const site = await openDatasetForModel(siteDir, modelDir);
  const training = await openDatasetForModel(trainData, modelDir);
  if (!site.tiles.some((t) => !t.anomaly)) throw new ConfigError(`${siteDir}: no tiles to audit`);
  const model = await openModel(modelDir, options.engine);
  const bar = options.progress?.('tiles');
  let last = 0;
  let audit: SiteAudit;
  try {
    bar?.start(0, 'audit');
    audit = await auditSite(model, modelDir, site, training, {
      resamples: options.resamples ?? 500,
      seed: options.seed ?? 1,
      maxTiles,
      onTiles: (done, total) => {
        bar?.setTotal(total);
        bar?.increment(done - last);
        last = done;
      },
    });
  } finally {
    bar?.stop();
    await model.dispose();
  }
  await writeSiteAudit(out, audit, { model: modelDir, site: siteDir, training: trainData });
  return audit;
}
