import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, InputError, log } from '../../core/index.ts';
import { openSlide, type SlideSource } from '../../data/index.ts';
import {
  checkHeatmapFor,
  dziTileCount,
  exportViewer,
  heatmapDirs,
  loadHeatmap,
  startViewer,
  type SlideHeatmap,
  type ViewerSlide,
} from '../../view/index.ts';
import { createProgress } from '../progress.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** The slides to show, each with its heatmap from --pred (matched by slide id, checked by size). */
async function viewerSlides(files: string[], pred: string | undefined, slideMpp: number | undefined): Promise<ViewerSlide[]> {
  const heatmaps = new Map<string, { h: SlideHeatmap; dir: string }>();
  if (pred)
    for (const dir of heatmapDirs(pred)) {
      const h = loadHeatmap(dir);
      heatmaps.set(h.slide.id, { h, dir });
    }
  // Slides named on the command line keep their file names as ids; a heatmap's slide keeps the id it was mapped under.
  const wanted = files.length
    ? files.map((path) => ({ path, id: undefined }))
    : [...heatmaps.values()].map((x) => ({ path: x.h.slide.path, id: x.h.slide.id }));
  if (!wanted.length) throw new ConfigError('name the slides to view, or --pred DIR with heatmaps');
  const out: ViewerSlide[] = [];
  try {
    for (const { path: p, id } of wanted) {
      if (!existsSync(p)) throw new InputError(`${p}: slide not found`);
      const slide: SlideSource = await openSlide(p, { id, fallbackMpp: slideMpp });
      out.push({ slide });
      const hm = heatmaps.get(slide.id);
      if (pred && !hm)
        throw new InputError(
          `${pred}: has no heatmap for ${slide.id} (it holds ${[...heatmaps.keys()].slice(0, 5).join(', ')}${heatmaps.size > 5 ? ', ...' : ''}); run \`gradelab heatmap --slide ${p}\``,
        );
      if (hm) {
        checkHeatmapFor(hm.h, hm.dir, { id: slide.id, width: slide.levels[0].width, height: slide.levels[0].height });
        out[out.length - 1] = { slide, heatmap: hm.h, heatmapDir: hm.dir };
      }
    }
  } catch (err) {
    for (const s of out) await s.slide.close();
    throw err;
  }
  return out;
}

export function viewCommand(y: Argv): Argv {
  return y.command(
    'view [slides..]',
    describeCommand('view'),
    (c) =>
      c
        .positional('slides', { type: 'string', array: true, describe: 'slide files (default: the slides of --pred)' })
        .option('pred', { type: 'string', describe: 'heatmaps from `gradelab heatmap` (overlays, tile values, referral order)' })
        .option('port', { type: 'number', default: 8765 })
        .option('host', {
          type: 'string',
          default: '127.0.0.1',
          describe: 'address to listen on (anything but loopback exposes the slides)',
        })
        .option('slide-mpp', {
          type: 'number',
          describe: "the slides' microns per pixel where the files do not say: the scale bar uses it",
        })
        .option('tile-format', { choices: ['jpeg', 'png'] as const, default: 'jpeg' as const })
        .option('export', { type: 'string', describe: 'write the viewer as static files that open from disk, and exit' }),
    async (argv) => {
      if (!Number.isInteger(argv.port) || argv.port < 0 || argv.port > 65535)
        throw new ConfigError(`--port must be 0-65535, got ${argv.port}`);
      if (argv['slide-mpp'] !== undefined && !(argv['slide-mpp'] > 0)) throw new ConfigError('--slide-mpp must be a positive number');
      const slides = await viewerSlides((argv.slides as string[] | undefined) ?? [], argv.pred, argv['slide-mpp']);
      try {
        if (argv.export) {
          const progress = createProgress('tiles');
          progress.start(
            slides.reduce((a, s) => a + dziTileCount(s.slide.levels[0].width, s.slide.levels[0].height), 0),
            'viewer export',
          );
          try {
            const { tiles } = await exportViewer(slides, argv.export, { format: argv['tile-format'], onTile: () => progress.increment() });
            progress.stop();
            process.stdout.write(`viewer for ${slides.length} slides (${tiles} tiles): ${resolve(argv.export, 'index.html')}\n`);
          } finally {
            progress.stop();
          }
          return;
        }
        if (!LOOPBACK.has(argv.host))
          log.warn(`--host ${argv.host}: the viewer and every slide it shows are open to whoever reaches this address`);
        const server = await startViewer(slides, { host: argv.host, port: argv.port, format: argv['tile-format'] });
        process.stdout.write(`viewer: ${server.url} (${slides.length} slides; Ctrl-C stops it)\n`);
        await new Promise<void>((done) => process.once('SIGINT', () => void server.close().then(done)));
      } finally {
        for (const s of slides) await s.slide.close();
      }
    },
  );
}
