import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSplit, openTileDataset, partitionOf, patientsOf } from '../../data/index.ts';
import { printJson, printTable } from '../output.ts';

export function datasetCommand(y: Argv): Argv {
  return y.command('dataset', describeCommand('dataset'), (s) =>
    s
      .command(
        'info <dir>',
        'Print tiling settings, counts per site, scanner and grade, and the saved split',
        (c) => c.positional('dir', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const ds = await openTileDataset(argv.dir);
          const count = (key: (t: (typeof ds.tiles)[number]) => string) => {
            const m = new Map<string, { tiles: number; slides: Set<string> }>();
            for (const t of ds.tiles) {
              const k = key(t);
              const e = m.get(k) ?? { tiles: 0, slides: new Set<string>() };
              e.tiles++;
              e.slides.add(t.slideId);
              m.set(k, e);
            }
            return Object.fromEntries([...m.entries()].sort().map(([k, v]) => [k, { tiles: v.tiles, slides: v.slides.size }]));
          };
          const patients = patientsOf(ds.tiles);
          const hasSplit = existsSync(join(argv.dir, 'splits.json'));
          const split = hasSplit ? await loadSplit(argv.dir) : undefined;
          const partitions = split
            ? Object.fromEntries(
                (['train', 'val', 'test'] as const).map((p) => [
                  p,
                  patients.filter((q) => partitionOf(split, q.patientId, 0) === p).length,
                ]),
              )
            : undefined;
          const info = {
            dir: argv.dir,
            settings: ds.meta,
            tiles: ds.tiles.length,
            slides: new Set(ds.tiles.map((t) => t.slideId)).size,
            patients: patients.length,
            bySite: count((t) => t.site),
            byScanner: count((t) => t.scanner),
            byGrade: count((t) => (t.grade === undefined ? 'unlabelled' : String(t.grade))),
            byAnomaly: count((t) => t.anomaly || 'none'),
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
          ] as const) {
            printTable(
              Object.entries(table).map(([k, v]) => [k, v.slides, v.tiles]),
              [title, 'slides', 'tiles'],
            );
          }
          process.stdout.write(
            split
              ? `split: ${split.by} ${split.folds} folds, seed ${split.seed}; fold 0 as test: ${JSON.stringify(partitions)}\n`
              : 'split: none yet (gradelab split DIR)\n',
          );
        },
      )
      .demandCommand(1, 'name a dataset subcommand: info'),
  );
}
