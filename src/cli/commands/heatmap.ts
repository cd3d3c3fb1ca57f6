import { existsSync } from 'node:fs';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, log, modelFile, readModelMeta, requirePixelModel } from '../../core/index.ts';
import { checkHeatmapRun, slidesToMap, writeHeatmaps, type HeatmapSource } from '../../view/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { claimFlags, staleAfterMs } from '../options.ts';
import { createProgress } from '../progress.ts';

function sourceOf(argv: {
  slide?: string[];
  manifest?: string;
  data?: string;
  split: 'train' | 'val' | 'test' | 'all';
  fold: number;
}): HeatmapSource {
  const given = [argv.slide?.length && '--slide', argv.manifest && '--manifest', argv.data && '--data'].filter(Boolean);
  if (given.length > 1) throw new ConfigError(`give one of --slide, --manifest or --data, not ${given.join(' and ')}`);
  if (argv.manifest) return { kind: 'manifest', path: argv.manifest };
  if (argv.data) return { kind: 'dataset', dir: argv.data, split: argv.split, fold: argv.fold };
  return { kind: 'slides', paths: argv.slide ?? [] };
}

export function heatmapCommand(y: Argv): Argv {
  return y.command(
    'heatmap',
    describeCommand('heatmap'),
    (c) =>
      claimFlags(
        engineFlags(
          c
            .option('model', { type: 'string', demandOption: true, describe: 'model directory' })
            .option('slide', { type: 'string', array: true, describe: "slide files (tiled as the model's training tiles were)" })
            .option('manifest', { type: 'string', describe: 'every slide of a manifest (reference grades and label masks included)' })
            .option('data', {
              type: 'string',
              describe:
                'a tile dataset: the slides of its --split partition, scored on the tiles it holds (as predict and eval score them)',
            })
            .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'test' as const, describe: 'with --data' })
            .option('fold', { type: 'number', default: 0, describe: 'with --data: the test fold' })
            .option('out', { type: 'string', default: 'heatmaps', describe: 'one folder per slide: heatmap.json, overlays, thumbnail' })
            .option('pooling', {
              choices: ['mean', 'topk', 'attention'] as const,
              default: 'mean' as const,
              describe: "tiles to the slide's grade, as predict and eval take it (attention: the model's attention-MIL head)",
            })
            .option('stride', {
              type: 'number',
              describe: "with --slide/--manifest: tile stride in output pixels (default: the model's training tiles)",
            })
            .option('min-tissue', {
              type: 'number',
              describe: "with --slide/--manifest: minimum tissue share of a tile (default: the model's)",
            })
            .option('slide-mpp', { type: 'number', describe: 'microns per pixel for slides that do not record it' })
            .option('resample', {
              type: 'boolean',
              default: false,
              describe: "with --data: accept tiles of another size that cover the model's field of view",
            })
            .option('batch', { type: 'number', default: 64 }),
        ),
        'map',
        'write the index once every slide is mapped, or say which are not (after the workers of an array)',
      ),
    async (argv) => {
      const meta = readModelMeta(argv.model);
      requirePixelModel(argv.model, meta, 'a heatmap');
      if (argv['min-tissue'] !== undefined && !(argv['min-tissue'] > 0 && argv['min-tissue'] <= 1))
        throw new ConfigError('--min-tissue must be in (0, 1]');
      for (const [flag, v] of [
        ['--batch', argv.batch],
        ['--stride', argv.stride],
      ] as const)
        if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ConfigError(`${flag} must be a positive integer`);
      if (argv['slide-mpp'] !== undefined && !(argv['slide-mpp'] > 0)) throw new ConfigError('--slide-mpp must be a positive number');
      const hasMil = existsSync(modelFile(argv.model, 'mil'));
      if (argv.pooling === 'attention' && !hasMil)
        throw new ConfigError(`${argv.model}: --pooling attention needs an attention-MIL head (gradelab mil fit)`);
      const slides = await slidesToMap(
        sourceOf(argv),
        { dir: argv.model, meta },
        { stride: argv.stride, minTissue: argv['min-tissue'], slideMpp: argv['slide-mpp'], resample: argv.resample },
      );
      const settings = {
        source: sourceOf(argv),
        slides: slides.length,
        stride: argv.stride,
        minTissue: argv['min-tissue'],
        slideMpp: argv['slide-mpp'],
      };
      const staleAfter = staleAfterMs(argv['stale-after']);
      checkHeatmapRun(argv.out, { dir: argv.model, meta, pooling: argv.pooling, mil: hasMil, settings }, staleAfter);
      const { modelScorer } = await import('../../workflows/modelScorer.ts');
      const scorer = await modelScorer(argv.model, engineOptions(argv));
      const mil = hasMil ? (await import('../../train/index.ts')).loadMil(argv.model) : undefined;
      const progress = createProgress('tiles', ' | {slide}');
      let planned = 0;
      let index: unknown[] = [];
      try {
        progress.start(0, 'heatmap');
        index = await writeHeatmaps(slides, { dir: argv.model, meta, scorer, mil, pooling: argv.pooling }, argv.out, {
          batch: argv.batch,
          settings,
          staleAfterMs: staleAfter,
          role: argv['claim-only'] ? 'worker' : argv.finish ? 'finish' : 'all',
          onPlanned: (n) => progress.setTotal((planned += n)),
          onTiles: (n, slide) => progress.increment(n, { slide }),
        });
      } finally {
        progress.stop();
        await scorer.dispose();
      }
      if (!index.length) {
        log.info(`this worker mapped what it could claim in ${argv.out}; the index is written once every slide is mapped`);
        return;
      }
      log.info(
        `heatmaps of ${slides.length} slide${slides.length === 1 ? '' : 's'} in ${argv.out} (${mil ? 'with' : 'without'} MIL attention; open them with \`gradelab view\`)`,
      );
    },
  );
}
