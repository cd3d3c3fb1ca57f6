import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, log } from '../../core/index.ts';
import { buildTileDataset, finishTileDataset, MASK_SCHEMES, readManifest, tileAsWorker, type BuildOptions } from '../../data/index.ts';
import { createProgress } from '../progress.ts';
import { claimFlags, staleAfterMs } from '../options.ts';

export function tileCommand(y: Argv): Argv {
  return y.command(
    'tile',
    describeCommand('tile'),
    (c) =>
      claimFlags(c, 'tile', 'write the index of a folder workers tiled (refused while a slide is unfinished); tiles nothing')
        .option('manifest', { type: 'string', demandOption: true, describe: 'manifest CSV (path column, or PANDA train.csv)' })
        .option('out', { type: 'string', demandOption: true, describe: 'dataset folder to create or resume' })
        .option('tile-size', { type: 'number', default: 256, describe: 'tile side in pixels' })
        .option('mpp', { type: 'number', default: 0.5, describe: 'target microns per pixel' })
        .option('min-tissue', { type: 'number', default: 0.5, describe: 'minimum tissue share of a kept tile (0-1)' })
        .option('stride', { type: 'number', describe: 'step between tiles in output pixels (default: tile size, no overlap)' })
        .option('store', {
          alias: 'encoding',
          choices: ['jpeg', 'raw', 'coords'] as const,
          default: 'jpeg' as const,
          describe: 'how tiles are kept: JPEG or raw RGB shards, or coordinates only (pixels read from the slides at use)',
        })
        .option('quality', { type: 'number', default: 90, describe: 'JPEG quality of stored tiles' })
        .option('tissue-method', {
          choices: ['saturation', 'od'] as const,
          default: 'saturation' as const,
          describe: 'tissue detection: Otsu on saturation or on optical density',
        })
        .option('slide-mpp', { type: 'number', describe: 'microns per pixel for slides that do not record it' })
        .option('images', { type: 'string', describe: "folder of PANDA's slides (default: beside the manifest, or train_images/)" })
        .option('task', { choices: ['prostate', 'breast'] as const, describe: 'task for a manifest without label columns' })
        .option('mask-scheme', {
          choices: MASK_SCHEMES,
          describe:
            "store each tile's tissue classes from the manifest's label masks (mask_path), read as radboud (0-5), karolinska (0-2) or gradelab (radboud + 6 anomaly); PANDA's masks are read by their data_provider without it",
        })
        .option('skip-bad', { type: 'boolean', default: false, describe: 'record unreadable slides in slides.csv and go on' })
        .option('allow-label-mismatch', {
          type: 'boolean',
          default: false,
          describe: 'keep rows whose gleason_score and isup_grade disagree',
        }),
    async (argv) => {
      if (!(argv['min-tissue'] >= 0 && argv['min-tissue'] <= 1))
        throw new ConfigError(`--min-tissue must be between 0 and 1, got ${argv['min-tissue']}`);
      if (!(argv.quality >= 1 && argv.quality <= 100)) throw new ConfigError(`--quality must be 1-100, got ${argv.quality}`);
      const manifest = readManifest(argv.manifest, {
        imagesDir: argv.images,
        task: argv.task,
        allowLabelMismatch: argv['allow-label-mismatch'],
        onWarning: (m) => log.warn(m),
      });
      const slides = createProgress('tiles', ' | slide {slide}/{slides} {name}');
      slides.start(0, 'tiling');
      let total = 0;
      const empty: string[] = [];
      const t0 = Date.now();
      const settings: BuildOptions = {
        out: argv.out,
        tileSize: argv['tile-size'],
        mpp: argv.mpp,
        stride: argv.stride,
        minTissue: argv['min-tissue'],
        encoding: argv.store,
        quality: argv.quality,
        tissueMethod: argv['tissue-method'],
        slideMpp: argv['slide-mpp'],
        skipBad: argv['skip-bad'],
        maskScheme: argv['mask-scheme'],
        staleAfterMs: staleAfterMs(argv['stale-after']),
        onSlideStart: (rec, i, n, tiles) => {
          total += tiles;
          slides.setTotal(total);
          slides.update({ slide: i + 1, slides: n, name: rec.slideId });
        },
        onTile: () => slides.increment(),
        onSlideDone: (rec, r) => {
          if (r.status === 'failed') log.warn(`skipped ${rec.slideId}: ${r.error}`);
          // A worker's log says which slides it did (a SLURM task's log is the record of its share).
          else if (argv['claim-only'] && r.status === 'done') log.info(`tiled ${rec.slideId}: ${r.tiles} tiles`);
          else if (r.tiles === 0) empty.push(rec.slideId);
        },
      };
      if (argv['claim-only']) {
        const pass = await tileAsWorker(manifest, settings);
        slides.stop();
        log.info(
          `tiled ${pass.tiled} slides in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${pass.finished} were finished already, ${pass.heldElsewhere} held by other workers; the index is written by \`gradelab tile --finish\``,
        );
        return;
      }
      const ds = await (argv.finish ? finishTileDataset : buildTileDataset)(manifest, settings);
      slides.stop();
      // A slide without tiles drops out of training and evaluation without a trace: say so.
      if (empty.length)
        log.warn(
          `${empty.length} slide${empty.length === 1 ? '' : 's'} gave no tile with ${argv['min-tissue']} tissue (not in the dataset, so never trained on or evaluated): ${empty.slice(0, 10).join(', ')}${empty.length > 10 ? ', ...' : ''}`,
        );
      const secs = (Date.now() - t0) / 1000;
      log.info(
        `${ds.meta.tiles} tiles from ${ds.meta.slides - ds.meta.failedSlides} slides in ${secs.toFixed(1)} s -> ${argv.out}${ds.meta.failedSlides ? ` (${ds.meta.failedSlides} slides failed: see slides.csv)` : ''}`,
      );
    },
  );
}
