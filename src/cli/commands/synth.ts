import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { log } from '../../core/index.ts';
import { ANOMALY_KINDS, generateSynthetic, type AnomalyKind } from '../../synth/index.ts';
import { createProgress } from '../progress.ts';

export function synthCommand(y: Argv): Argv {
  return y.command(
    'synth',
    describeCommand('synth'),
    (c) =>
      c
        .option('task', { choices: ['prostate', 'breast'] as const, demandOption: true })
        .option('slides', { type: 'number', demandOption: true, describe: 'number of slides' })
        .option('out', { type: 'string', demandOption: true, describe: 'output folder (slides/, masks/, manifest.csv)' })
        .option('sites', { type: 'number', default: 3, describe: 'number of sites (1-6), each with its own stain protocol and scanner' })
        .option('site', { type: 'string', array: true, describe: 'use only these sites by name (e.g. site-D for an unseen site)' })
        .option('size', { type: 'number', default: 2048, describe: 'slide width in level-0 pixels (prostate slides are half as tall)' })
        .option('mpp', { type: 'number', default: 0.5, describe: 'microns per pixel at level 0' })
        .option('anomalies', { type: 'number', default: 0.1, describe: 'share of slides with a rare anomaly (0-1)' })
        .option('anomaly-kinds', {
          type: 'string',
          describe: `comma-separated kinds the anomalous slides take in turn (default all: ${ANOMALY_KINDS.join(', ')})`,
        })
        .option('look-alike-stains', {
          choices: ['matched', 'natural'] as const,
          default: 'matched' as const,
          describe: "near-OOD look-alikes stained as the slide's tissue (only morphology tells them apart) or with their own stains",
        })
        .option('format', {
          choices: ['tiff', 'svs'] as const,
          default: 'tiff' as const,
          describe: 'generic pyramidal TIFF or Aperio SVS structure',
        })
        .option('seed', { type: 'number', default: 1 })
        .option('workers', { type: 'number', describe: 'slides rendered at once in worker threads (default: every core)' }),
    async (argv) => {
      const progress = createProgress('tiles', ' | slide {slide}');
      const t0 = Date.now();
      const perSlide = Math.ceil(argv.size / 256) * Math.ceil((argv.task === 'prostate' ? argv.size / 2 : argv.size) / 256);
      progress.start(perSlide * argv.slides, `synth ${argv.task}`);
      const { manifest, slides } = await generateSynthetic({
        task: argv.task,
        slides: argv.slides,
        out: argv.out,
        sites: argv.sites,
        siteNames: argv.site,
        size: argv.size,
        mpp: argv.mpp,
        anomalies: argv.anomalies,
        anomalyKinds: argv.anomalyKinds?.split(',').map((k) => k.trim()) as AnomalyKind[] | undefined,
        lookAlikeStains: argv.lookAlikeStains,
        format: argv.format,
        seed: argv.seed,
        onTile: () => progress.increment(),
        onSlide: (done, total, id, tiles) => {
          // Worker threads report whole slides; this thread reports tiles as it renders them.
          if (tiles === 0 || argv.workers !== 1) progress.increment(perSlide);
          progress.update({ slide: `${done}/${total} ${id}` });
        },
        workers: argv.workers,
      });
      progress.stop();
      const anomalies = slides.filter((s) => s.anomaly).length;
      log.info(
        `${slides.length} slides (${anomalies} with anomalies) from ${new Set(slides.map((s) => s.site)).size} sites in ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${manifest}`,
      );
    },
  );
}
