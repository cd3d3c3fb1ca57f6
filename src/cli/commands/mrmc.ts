import { basename } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { checkWritable, ConfigError, writeFileAtomic } from '../../core/index.ts';
import { analyseMrmc, readPredictions, readReaderStudy, RATINGS_COLUMNS, writeMrmc, type MrmcFom } from '../../eval/index.ts';

const names = (v: string, flag: string) => {
  const xs = v.split(',').map((s) => s.trim());
  if (xs.length < 2 || xs.some((s) => !s) || new Set(xs).size !== xs.length)
    throw new ConfigError(`${flag} takes two or more distinct comma-separated names, got "${v}"`);
  return xs;
};

export function mrmcCommand(y: Argv): Argv {
  return y.command(
    'mrmc',
    describeCommand('mrmc'),
    (c) =>
      c
        .option('ratings', {
          type: 'string',
          describe: `reader-study CSV: ${RATINGS_COLUMNS.join(', ')} (one row per reader, modality and case)`,
        })
        .option('fom', {
          choices: ['auc', 'accuracy', 'qwk'] as const,
          default: 'auc' as const,
          describe: 'figure of merit: Wilcoxon AUC (truth 0/1, ratings on any scale), or accuracy / quadratic kappa of grades',
        })
        .option('out', { type: 'string', describe: 'folder for mrmc.json and mrmc.md' })
        .option('template', { type: 'string', describe: 'write a blank ratings CSV for a study of --predictions cases instead' })
        .option('predictions', { type: 'string', describe: "with --template: a predictions file whose slides are the study's cases" })
        .option('readers', { type: 'string', default: 'reader1,reader2,reader3', describe: 'with --template: reader names' })
        .option('modalities', { type: 'string', default: 'unaided,aided', describe: 'with --template: modality names' })
        .check((a) => {
          if (!a.ratings === !a.template) throw new ConfigError('give --ratings CSV (analyse a study) or --template CSV (start one)');
          if (a.template && !a.predictions) throw new ConfigError('--template needs --predictions (its slides are the cases)');
          return true;
        }),
    async (argv) => {
      if (argv.template) {
        checkWritable(argv.template);
        const readers = names(argv.readers, '--readers');
        const modalities = names(argv.modalities, '--modalities');
        const rows = readPredictions(argv.predictions!).rows;
        // Cases in the order of the file; truth is the reference grade, ratings left for the readers.
        const body = readers.flatMap((r) => modalities.flatMap((m) => rows.map((p) => [r, m, p.slideId, p.label ?? '', ''])));
        await writeFileAtomic(argv.template, stringify([[...RATINGS_COLUMNS], ...body]));
        process.stdout.write(
          `wrote ${body.length} blank ratings (${readers.length} readers x ${modalities.length} modalities x ${rows.length} cases) to ${argv.template}\n`,
        );
        return;
      }
      if (argv.out) checkWritable(argv.out);
      const fom = argv.fom as MrmcFom;
      const study = readReaderStudy(argv.ratings!, fom);
      const a = analyseMrmc(study, fom);
      const f = (x: number, d: number) => x.toFixed(d);
      const lines = [
        `${a.readers.length} readers x ${a.modalities.length} modalities x ${a.cases} cases; ${fom}: ${a.modalities.map((m, i) => `${m} ${f(a.modalityFom[i], 4)}`).join(', ')}`,
        `random readers and cases: F(${a.rrrc.ndf}, ${f(a.rrrc.ddf, 2)}) = ${f(a.rrrc.F, 2)}, p = ${f(a.rrrc.p, 4)}`,
        ...a.rrrc.differences.map((d) => `  ${d.a} - ${d.b}: ${f(d.estimate, 5)} (95% CI ${f(d.lower, 5)} to ${f(d.upper, 5)})`),
        `fixed readers: chi-square(${a.frrc.df}) = ${f(a.frrc.chi2, 3)}, p = ${f(a.frrc.p, 4)}; fixed cases: F(${a.rrfc.ndf}, ${a.rrfc.ddf}) = ${f(a.rrfc.F, 2)}, p = ${f(a.rrfc.p, 4)}`,
      ];
      if (argv.out) {
        // The ratings file by name: mrmc.json travels into reports, which carry no machine's paths.
        await writeMrmc(argv.out, a, basename(argv.ratings!));
        lines.push(`tables: ${argv.out}/mrmc.md, every figure: ${argv.out}/mrmc.json`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  );
}
