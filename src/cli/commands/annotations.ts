import { join } from 'node:path';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { writeFileAtomic } from '../../core/index.ts';
import { heatmapDirs, loadHeatmap, toAsapXml, toGeoJson } from '../../view/index.ts';

export function annotationsCommand(y: Argv): Argv {
  return y.command(
    'export-annotations',
    describeCommand('export-annotations'),
    (c) =>
      c
        .option('pred', { type: 'string', demandOption: true, describe: 'heatmaps from `gradelab heatmap` (a folder of them, or one)' })
        .option('format', { choices: ['qupath', 'geojson', 'asap'] as const, default: 'qupath' as const })
        .option('tiles', {
          type: 'boolean',
          default: false,
          describe: 'one detection per tile with its probabilities, instead of merged regions per grade',
        })
        .option('out', { type: 'string', describe: 'output folder (default: beside each heatmap)' }),
    async (argv) => {
      const dirs = heatmapDirs(argv.pred);
      for (const dir of dirs) {
        const h = loadHeatmap(dir);
        const base = join(argv.out ?? dir, argv.out ? h.slide.id : 'annotations');
        const path = argv.format === 'asap' ? `${base}.xml` : `${base}.geojson`;
        await writeFileAtomic(path, argv.format === 'asap' ? toAsapXml(h) : JSON.stringify(toGeoJson(h, argv.tiles ? 'tiles' : 'regions')));
      }
      process.stdout.write(
        `${dirs.length} slide${dirs.length === 1 ? '' : 's'} as ${argv.format} annotations${argv.out ? ` in ${argv.out}` : ' beside their heatmaps'}\n`,
      );
    },
  );
}
