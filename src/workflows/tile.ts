import { log } from '../core/index.ts';
import { buildTileDataset, readManifest, type BuildOptions, type TileDataset } from '../data/index.ts';

export interface TileSlidesOptions extends Omit<BuildOptions, 'out'> {
  /** PANDA's slide folder (default: beside the manifest, or train_images/). */
  imagesDir?: string;
  /** The task of a manifest without label columns. */
  task?: 'prostate' | 'breast';
  /** Keep rows whose gleason_score and isup_grade disagree. */
  allowLabelMismatch?: boolean;
}

/**
 * Tiles every slide of a manifest (gradelab's CSV, or PANDA's train.csv) into a tile dataset folder at
 * the target tile size and resolution, tissue only, resumable: `gradelab tile` as a function.
 */
export async function tileSlides(manifestPath: string, out: string, options: TileSlidesOptions): Promise<TileDataset> {
  const manifest = readManifest(manifestPath, {
    imagesDir: options.imagesDir,
    task: options.task,
    allowLabelMismatch: options.allowLabelMismatch,
    onWarning: (m) => log.warn(m),
  });
  return buildTileDataset(manifest, { ...options, out });
}
