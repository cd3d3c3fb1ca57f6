import sharp from 'sharp';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { writeFileAtomic } from '../../core/index.ts';
import { openSlide } from '../../data/index.ts';
import { printJson, printTable } from '../output.ts';

export function slideCommand(y: Argv): Argv {
  return y.command('slide', describeCommand('slide'), (s) =>
    s
      .command(
        'info <file>',
        'Print levels, microns per pixel, objective power, vendor and associated images',
        (c) =>
          c
            .positional('file', { type: 'string', demandOption: true, describe: 'slide file (.svs, .tiff, .png, .jpg)' })
            .option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
        async (argv) => {
          const slide = await openSlide(argv.file);
          try {
            const info = {
              file: argv.file,
              id: slide.id,
              vendor: slide.vendor,
              mpp: slide.mpp ?? null,
              mppX: slide.mppX ?? null,
              mppY: slide.mppY ?? null,
              objectivePower: slide.objectivePower ?? null,
              levels: slide.levels,
              associatedImages: slide.associatedImages,
              properties: slide.properties ?? {},
            };
            if (argv.json) {
              printJson(info);
              return;
            }
            process.stdout.write(
              `${argv.file}\n  vendor: ${info.vendor}\n  mpp: ${info.mpp === null ? 'unknown' : info.mppX !== null && info.mppY !== null && Math.abs(info.mppX - info.mppY) > 1e-6 ? `${info.mppX.toFixed(4)} x ${info.mppY.toFixed(4)}` : info.mpp.toFixed(4)}\n  objective power: ${info.objectivePower ?? 'unknown'}\n  associated images: ${info.associatedImages.join(', ') || 'none'}\n`,
            );
            printTable(
              slide.levels.map((l, i) => [i, l.width, l.height, l.downsample.toFixed(3)]),
              ['level', 'width', 'height', 'downsample'],
            );
          } finally {
            await slide.close();
          }
        },
      )
      .command(
        'region <file>',
        'Read a region (x, y in level-0 pixels, as OpenSlide) and write it as PNG',
        (c) =>
          c
            .positional('file', { type: 'string', demandOption: true })
            .option('level', { type: 'number', default: 0, describe: 'pyramid level' })
            .option('x', { type: 'number', demandOption: true, describe: 'left, level-0 pixels' })
            .option('y', { type: 'number', demandOption: true, describe: 'top, level-0 pixels' })
            .option('width', { type: 'number', demandOption: true, describe: 'width in pixels of the level' })
            .option('height', { type: 'number', demandOption: true, describe: 'height in pixels of the level' })
            .option('out', { type: 'string', demandOption: true, describe: 'output PNG' }),
        async (argv) => {
          const slide = await openSlide(argv.file);
          try {
            const img = await slide.readRegion(argv.level, argv.x, argv.y, argv.width, argv.height);
            const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
              .png()
              .toBuffer();
            await writeFileAtomic(argv.out, png);
            process.stderr.write(`wrote ${argv.out} (${img.width}x${img.height})\n`);
          } finally {
            await slide.close();
          }
        },
      )
      .demandCommand(1, 'name a slide subcommand: info or region'),
  );
}
