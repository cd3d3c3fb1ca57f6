import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError, log, readModelMeta, sha256Text, writeFileAtomic } from '../../core/index.ts';
import { loadSplit, openTileDataset, type Partition, readManifest, tilesOfPartition } from '../../data/index.ts';
import { HEATMAP_FILE, loadHeatmap } from '../../view/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { modelScorer } from '../modelScorer.ts';
import { createProgress } from '../progress.ts';
import { heatmapOfSlide, type HeatmapSlide } from '../slideHeatmap.ts';

function fromManifest(path: string, keep?: Set<string>): HeatmapSlide[] {
  return readManifest(path)
    .records.filter((r) => !keep || keep.has(r.slideId))
    .map((r) => ({ path: r.path, id: r.slideId, grade: r.grade, maskPath: r.maskPath, mpp: r.mpp }));
}

/** The slides of one partition of a tile dataset, from the manifest it was tiled from (unchanged since). */
async function slidesOfPartition(data: string, partition: Partition | 'all', fold: number): Promise<HeatmapSlide[]> {
  const ds = await openTileDataset(data);
  const tiles = partition === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(data), partition, fold);
  const manifest = ds.meta.manifest;
  if (!existsSync(manifest)) throw new ConfigError(`${data}: its manifest ${manifest} is gone; give the slides with --manifest or --slide`);
  if (sha256Text(readFileSync(manifest)) !== ds.meta.manifestSha256)
    throw new ConfigError(`${data}: its manifest ${manifest} changed after tiling; give the slides with --manifest or --slide`);
  const slides = fromManifest(manifest, new Set(tiles.map((t) => t.slideId)));
  if (!slides.length) throw new ConfigError(`${data}: no slides in the ${partition} partition of fold ${fold}`);
  return slides;
}

/** Slides from --slide files, every slide of a manifest, or one partition of a tile dataset. */
async function slidesToMap(argv: { slide?: string[]; manifest?: string; data?: string; split: Partition | 'all'; fold: number }) {
  const given = [argv.slide?.length && '--slide', argv.manifest && '--manifest', argv.data && '--data'].filter(Boolean);
  if (given.length > 1) throw new ConfigError(`give one of --slide, --manifest or --data, not ${given.join(' and ')}`);
  if (argv.manifest) return fromManifest(argv.manifest);
  if (argv.data) return slidesOfPartition(argv.data, argv.split, argv.fold);
  if (!argv.slide?.length) throw new ConfigError('give the slides to map: --slide FILE..., --manifest CSV or --data DATASET');
  for (const p of argv.slide) if (!existsSync(p)) throw new ConfigError(`${p}: slide not found`);
  return argv.slide.map((path): HeatmapSlide => ({ path }));
}

/** The heatmap folders under DIR (one per slide, each with heatmap.json), in name order. */
export function heatmapDirs(dir: string): string[] {
  if (!existsSync(dir)) throw new ConfigError(`${dir}: no such folder of heatmaps (make it with \`gradelab heatmap\`)`);
  if (existsSync(join(dir, HEATMAP_FILE))) return [dir];
  const found = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, HEATMAP_FILE)))
    .map((d) => join(dir, d.name))
    .sort();
  if (!found.length) throw new ConfigError(`${dir}: holds no ${HEATMAP_FILE} (make heatmaps with \`gradelab heatmap\`)`);
  return found;
}

export function heatmapCommand(y: Argv): Argv {
  return y.command(
    'heatmap',
    "Map a model's opinion over slides: per-tile grade probabilities, OOD scores and flags, MIL attention; JSON and PNG overlays",
    (c) =>
      engineFlags(
        c
          .option('model', { type: 'string', demandOption: true, describe: 'model directory' })
          .option('slide', { type: 'string', array: true, describe: 'slide files' })
          .option('manifest', { type: 'string', describe: 'every slide of a manifest (reference grades and label masks included)' })
          .option('data', { type: 'string', describe: 'a tile dataset: the slides of its --split partition, from its manifest' })
          .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const, describe: 'with --data' })
          .option('fold', { type: 'number', default: 0, describe: 'with --data: the test fold' })
          .option('out', { type: 'string', default: 'heatmaps', describe: 'one folder per slide: heatmap.json, overlays, thumbnail' })
          .option('min-tissue', {
            type: 'number',
            default: 0.5,
            describe: 'tiles with at least this tissue share are scored (as `gradelab tile` keeps them)',
          })
          .option('batch', { type: 'number', default: 64 }),
      ),
    async (argv) => {
      const meta = readModelMeta(argv.model);
      const slides = await slidesToMap(argv);
      if (!(argv['min-tissue'] > 0 && argv['min-tissue'] <= 1)) throw new ConfigError('--min-tissue must be in (0, 1]');
      if (!Number.isInteger(argv.batch) || argv.batch < 1) throw new ConfigError('--batch must be a positive integer');
      const scorer = await modelScorer(argv.model, engineOptions(argv));
      const mil = existsSync(join(argv.model, 'mil.json')) ? (await import('../../train/index.ts')).loadMil(argv.model) : undefined;
      const progress = createProgress('tiles', ' | {slide}');
      const index: { id: string; priority: number; pred: number | null; reference: number | null; oodFlag: boolean | null }[] = [];
      try {
        progress.start(0, 'heatmap');
        let planned = 0;
        for (const s of slides) {
          const h = await heatmapOfSlide(s, { dir: argv.model, meta, scorer, mil }, argv.out, {
            minTissue: argv['min-tissue'],
            batch: argv.batch,
            onPlanned: (n) => progress.setTotal((planned += n)),
            onTiles: (n) => progress.increment(n, { slide: s.id ?? s.path }),
          });
          index.push({
            id: h.slide.id,
            priority: h.referralPriority,
            pred: h.slidePrediction?.pred ?? null,
            reference: h.reference,
            oodFlag: h.slidePrediction?.oodFlag ?? null,
          });
        }
      } finally {
        progress.stop();
        await scorer.dispose();
      }
      index.sort((a, b) => b.priority - a.priority);
      await writeFileAtomic(join(argv.out, 'index.json'), JSON.stringify(index, null, 2));
      // Read one back: what was written is what the viewer will validate.
      loadHeatmap(join(argv.out, index[0].id));
      log.info(
        `heatmaps of ${slides.length} slide${slides.length === 1 ? '' : 's'} in ${argv.out} (${mil ? 'with' : 'without'} MIL attention; open them with \`gradelab view\`)`,
      );
    },
  );
}
