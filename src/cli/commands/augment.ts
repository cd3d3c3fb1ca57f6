import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, writeFileAtomic, type RgbImage } from '../../core/index.ts';
import { contactSheet, describeTransforms, loadPipeline, previewPipeline, severityGrid } from '../../augment/index.ts';
import { openSlide } from '../../data/index.ts';
import { printJson, printTable } from '../output.ts';

async function readPreviewImage(path: string, size: number): Promise<RgbImage> {
  const slide = await openSlide(path);
  try {
    const l0 = slide.levels[0];
    const w = Math.min(size, l0.width);
    const h = Math.min(size, l0.height);
    // The centre of the image: for a whole slide, usually tissue.
    return await slide.readRegion(0, Math.floor((l0.width - w) / 2), Math.floor((l0.height - h) / 2), w, h);
  } finally {
    await slide.close();
  }
}

function formatParams(p: Record<string, unknown>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? JSON.stringify(v) : v}`)
    .join(' ');
}

export function augmentCommand(y: Argv): Argv {
  return y.command('augment', describeCommand('augment'), (s) =>
    s
      .command(
        'list',
        'Every transform with its parameters, defaults, presets and severity table',
        (c) => c.option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const rows = describeTransforms();
          if (argv.json) return printJson(rows);
          printTable(
            rows.map((r) => [
              r.name,
              r.kind,
              formatParams(r.params),
              r.severities
                ? r.severities
                    .map((s) =>
                      Object.values(s as Record<string, unknown>)
                        .map((v) => (Array.isArray(v) ? v.join('/') : v))
                        .join('/'),
                    )
                    .join(' | ')
                : r.presets
                  ? Object.entries(r.presets)
                      .map(([k, v]) => `${k}: ${formatParams(v as Record<string, unknown>)}`)
                      .join(', ')
                  : '',
            ]),
            ['transform', 'kind', 'defaults', 'severities 1..5 (or presets)'],
          );
        },
      )
      .command(
        'preview',
        'Write a contact sheet of a pipeline applied to an image (or a corruption at severities 1..5)',
        (c) =>
          c
            .option('pipeline', { type: 'string', describe: 'pipeline YAML (a list of steps); optional with --severity-grid' })
            .option('image', { type: 'string', demandOption: true, describe: 'an image or slide (its centre is used)' })
            .option('out', { type: 'string', demandOption: true, describe: 'output PNG' })
            .option('n', { type: 'number', default: 16, describe: 'number of draws' })
            .option('seed', { type: 'number', default: 1 })
            .option('size', { type: 'number', default: 256, describe: 'side of the centre crop in pixels' })
            .option('severity-grid', {
              type: 'boolean',
              default: false,
              describe: 'each corruption of the pipeline (or all) at severities 1..5',
            }),
        async (argv) => {
          if (!argv['severity-grid'] && !argv.pipeline) throw new ConfigError('--pipeline is needed unless --severity-grid is given');
          if (!Number.isInteger(argv.n) || argv.n < 1 || argv.n > 256) throw new ConfigError(`--n must be an integer 1-256, got ${argv.n}`);
          const pipeline = argv.pipeline ? loadPipeline(argv.pipeline) : undefined;
          const image = await readPreviewImage(argv.image, argv.size);
          let png: Buffer;
          if (argv['severity-grid']) {
            const { cells, rowLabels } = await severityGrid(pipeline?.spec ?? [], image, argv.seed);
            if (!cells.length) throw new ConfigError(`${argv.pipeline}: no transform with severities in this pipeline`);
            png = await contactSheet(cells, 6, { rowLabels, title: `severities 1-5, seed ${argv.seed}` });
          } else {
            const cells = await previewPipeline(pipeline!, image, argv.n, argv.seed);
            png = await contactSheet(cells, Math.ceil(Math.sqrt(cells.length)), { title: `${argv.pipeline}` });
          }
          await writeFileAtomic(argv.out, png);
          process.stderr.write(`wrote ${argv.out}\n`);
        },
      )
      .demandCommand(1, 'name an augment subcommand: list or preview'),
  );
}
