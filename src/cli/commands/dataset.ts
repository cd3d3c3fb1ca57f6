import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkWritable, ConfigError } from '../../core/index.ts';
import {
  exportIndex,
  importPatches,
  importedFeatureSets,
  loadSplit,
  openTileIndex,
  partitionOf,
  patientsOfDataset,
  readManifest,
  summariseDataset,
  maskGrades,
  describeMaskGrades,
} from '../../data/index.ts';
import { printJson, printTable } from '../output.ts';

export function datasetCommand(y: Argv): Argv {
  return y.command('dataset', describeCommand('dataset'), (s) =>
    s
      .command(
        'info <dir>',
        'Print tiling settings, counts per site, scanner and grade, and the saved split',
        (c) => c.positional('dir', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
        async (argv) => {
          // Counted in DuckDB on the tile index: no tile row is read into memory.
          const ds = await openTileIndex(argv.dir);
          const summary = await summariseDataset(ds);
          const hasSplit = existsSync(join(argv.dir, 'splits.json'));
          const split = hasSplit ? await loadSplit(argv.dir) : undefined;
          const patients = split ? await patientsOfDataset(ds) : [];
          const partitions = split
            ? Object.fromEntries(
                (['train', 'val', 'test'] as const).map((p) => [
                  p,
                  patients.filter((q) => partitionOf(split, q.patientId, 0) === p).length,
                ]),
              )
            : undefined;
          const fromMasks = await maskGrades(ds);
          const info = {
            dir: argv.dir,
            settings: ds.meta,
            ...summary,
            ...(ds.meta.maskScheme ? { maskGrades: fromMasks } : {}),
            split: split ? { by: split.by, folds: split.folds, seed: split.seed, fold0Patients: partitions } : null,
          };
          if (argv.json) return printJson(info);
          const m = ds.meta;
          process.stdout.write(`${argv.dir}: ${info.tiles} tiles, ${info.slides} slides, ${info.patients} patients (${m.task})\n`);
          process.stdout.write(
            `  tiles ${m.tileSize}px at ${m.mpp} um/px, stride ${m.stride}, min tissue ${m.minTissue}, ${m.encoding}${m.encoding === 'jpeg' ? ` q${m.quality}` : ''}\n`,
          );
          for (const [title, table] of [
            ['site', info.bySite],
            ['scanner', info.byScanner],
            ['grade', info.byGrade],
            ['anomaly', info.byAnomaly],
            ...(m.maskScheme ? [[`tissue class (${m.maskScheme} masks)`, info.byMaskClass] as const] : []),
          ] as const) {
            printTable(
              Object.entries(table).map(([k, v]) => [k, v.slides, v.tiles]),
              [title, 'slides', 'tiles'],
            );
          }
          if (fromMasks.length) process.stdout.write(`${describeMaskGrades(fromMasks)}\n`);
          process.stdout.write(
            split
              ? `split: ${split.by} ${split.folds} folds, seed ${split.seed}; fold 0 as test: ${JSON.stringify(partitions)}\n`
              : 'split: none yet (gradelab split DIR)\n',
          );
        },
      )
      .command(
        'export <dir>',
        'Write the tile table for other tools: Parquet (pandas, polars, R, DuckDB) or CSV; --site/--slide narrow it',
        (c) =>
          c
            .positional('dir', { type: 'string', demandOption: true })
            .option('format', { choices: ['parquet', 'csv'] as const, default: 'parquet' as const })
            .option('out', { type: 'string', demandOption: true, describe: 'output file' })
            .option('site', { type: 'string', array: true, describe: 'only these sites' })
            .option('slide', { type: 'string', array: true, describe: 'only these slides' }),
        async (argv) => {
          checkWritable(argv.out);
          const ds = await openTileIndex(argv.dir);
          const rows = await exportIndex(ds.index, argv.out, argv.format, {
            sites: argv.site?.map(String),
            slides: argv.slide?.map(String),
          });
          process.stdout.write(`wrote ${rows} tiles to ${argv.out} (${argv.format})\n`);
        },
      )
      .command(
        'import',
        "Make a coordinates-only dataset from CLAM's or TRIDENT's patch files (pixels read from the slides at use)",
        (c) =>
          c
            .option('from', { choices: ['clam', 'trident'] as const, demandOption: true })
            .option('patches', { type: 'string', demandOption: true, describe: 'folder of patch .h5 files (or its parent)' })
            .option('manifest', { type: 'string', demandOption: true, describe: 'manifest of the slides the patches come from' })
            .option('out', { type: 'string', demandOption: true, describe: 'new dataset folder' })
            .option('slide-mpp', { type: 'number', describe: 'microns per pixel of slides whose file and manifest row do not say' })
            .option('features', {
              type: 'string',
              describe: "folder of the toolkit's feature .h5 files of these patches (TRIDENT's features_ENC/, CLAM's FEATURES/h5_files/)",
            })
            .option('encoder', {
              type: 'string',
              describe: 'name of the encoder that computed --features (default: the folder name without features_)',
            }),
        async (argv) => {
          checkWritable(argv.out);
          if (argv.encoder && !argv.features) throw new ConfigError('--encoder names the encoder of --features; give --features DIR');
          const manifest = readManifest(argv.manifest);
          const ds = await importPatches(manifest, {
            from: argv.from,
            patches: argv.patches,
            out: argv.out,
            slideMpp: argv['slide-mpp'],
            ...(argv.features ? { features: { dir: argv.features, name: argv.encoder } } : {}),
          });
          const m = ds.meta;
          process.stdout.write(
            `${ds.tiles.length} tiles of ${m.tileSize} px at ${m.mpp} um/px from ${m.slides} slides (${argv.from}) -> ${argv.out} (coordinates only)\n`,
          );
          for (const [name, { imported }] of importedFeatureSets(ds))
            process.stdout.write(
              `features "${name}": ${imported.dim} per tile; train a head on them with model.backbone: {features: ${name}}\n`,
            );
        },
      )
      .demandCommand(1, 'name a dataset subcommand: info, export, import'),
  );
}
