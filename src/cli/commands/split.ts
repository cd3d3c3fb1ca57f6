import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { makeSplit, openTileIndex, partitionOf, patientsOfDataset, saveSplit } from '../../data/index.ts';
import { printTable } from '../output.ts';

export function splitCommand(y: Argv): Argv {
  return y.command(
    'split <dir>',
    describeCommand('split'),
    (c) =>
      c
        .positional('dir', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
        .option('folds', { type: 'number', default: 5, describe: 'number of folds (ignored with --by site)' })
        .option('seed', { type: 'number', default: 1, describe: 'random seed' })
        .option('by', {
          choices: ['patient', 'site'] as const,
          default: 'patient' as const,
          describe: 'patient k-fold, or leave-one-site-out',
        }),
    async (argv) => {
      // Patients are counted in DuckDB on the index: a split of 10^4 patients never loads their tiles.
      const patients = await patientsOfDataset(await openTileIndex(argv.dir));
      const split = makeSplit(patients, { folds: argv.folds, seed: argv.seed, by: argv.by });
      await saveSplit(argv.dir, split);
      const strata = [...new Set(patients.map((p) => p.stratum))].sort();
      const rows = split.foldNames.map((name, f) => {
        const inFold = patients.filter((p) => split.patientFold[p.patientId] === f);
        return [
          name,
          inFold.length,
          inFold.reduce((n, p) => n + p.slides, 0),
          inFold.reduce((n, p) => n + p.tiles, 0),
          ...strata.map((s) => inFold.filter((p) => p.stratum === s).length),
        ];
      });
      printTable(rows, ['fold', 'patients', 'slides', 'tiles', ...strata.map((s) => `grade ${s}`)]);
      const counts = { train: 0, val: 0, test: 0 };
      for (const p of patients) counts[partitionOf(split, p.patientId, 0)]++;
      process.stdout.write(
        `fold 0 as test: ${counts.train} train / ${counts.val} val / ${counts.test} test patients; saved ${argv.dir}/splits.json\n`,
      );
    },
  );
}
