import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, log } from '../../core/index.ts';
import { parseShard } from '../../data/index.ts';
import type { SuiteSummary } from '../../eval/index.ts';
import { EXIT_CRITERIA_FAILED } from '../exitCodes.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { createProgress } from '../progress.ts';
import { checkedEncoder, encoderFlags } from '../encoderOptions.ts';

/** One line per criterion, and exit 3 when any fails (a CI pipeline gates on it). */
function printCriteria(summary: SuiteSummary, out: string): void {
  for (const c of summary.criteria)
    process.stdout.write(`${c.status === 'not-evaluable' ? 'NOT EVALUABLE' : c.pass ? 'PASS' : 'FAIL'}  ${c.criterion}  (${c.evidence})\n`);
  process.stdout.write(`${summary.passed ? 'all criteria pass' : 'some criteria FAIL'}; results in ${out}\n`);
  if (!summary.passed) process.exitCode = EXIT_CRITERIA_FAILED;
}

export function robustnessCommand(y: Argv): Argv {
  return y.command('robustness', describeCommand('robustness'), (s) =>
    s
      .command(
        '$0',
        "Run a suite on a model and a dataset's test partition",
        (c) =>
          engineFlags(c)
            .option('model', { type: 'string', demandOption: true })
            .option('data', { type: 'string', demandOption: true })
            .option('suite', { type: 'string', demandOption: true, describe: 'suite YAML (experiments/suites/*.yaml)' })
            .option('out', { type: 'string', demandOption: true })
            .option('baseline', { type: 'string', describe: 'baseline model directory for corruption error (mCE)' })
            .option('shard', { type: 'string', describe: 'run the I-th of N shares of the conditions: I/N' })
            .option('tiles-per-slide', { type: 'number', describe: "test tiles per slide (default: the suite's tilesPerSlide)" })
            .option('split', {
              choices: ['train', 'val', 'test', 'all'] as const,
              default: 'test' as const,
              describe: 'partition of --data to run on (all: a held-out test set)',
            })
            .option('fold', { type: 'number', default: 0 })
            .option('resamples', { type: 'number', default: 300 })
            .option('seed', { type: 'number', default: 1 })
            .option('tracking-dir', { type: 'string' }),
        async (argv) => {
          const shard = parseShard(argv.shard);
          const { runRobustnessSuite } = await import('../../workflows/robustness.ts');
          const summary = await runRobustnessSuite(argv.model, argv.data, argv.suite, argv.out, {
            baseline: argv.baseline,
            shard,
            tilesPerSlide: argv['tiles-per-slide'],
            split: argv.split,
            fold: argv.fold,
            resamples: argv.resamples,
            seed: argv.seed,
            trackingDir: argv['tracking-dir'],
            engine: engineOptions(argv),
            progress: createProgress,
          });
          if (summary) printCriteria(summary, argv.out);
          else log.info(`shard ${shard!.index}/${shard!.count} done; join shards with \`gradelab robustness merge ${argv.out} ...\``);
        },
      )
      .command(
        'embeddings',
        'How much an embedding encodes site or scanner beside the biology: RI, MaRI, CRoMa, confounder decodability, APD and nIPD',
        (c) =>
          encoderFlags(engineFlags(c))
            .option('data', { type: 'string', demandOption: true, describe: 'tile dataset folder' })
            .option('model', { type: 'string', describe: "a model directory: its features (a head on an encoder: the encoder's)" })
            .option('features', {
              type: 'string',
              describe: 'imported CLAM/TRIDENT features of --data, by name (gradelab dataset import --features)',
            })
            .option('label', { type: 'string', default: 'grade', describe: 'the biology: grade or a label column' })
            .option('confounder', { choices: ['site', 'scanner'] as const, default: 'site' as const })
            .option('group', {
              choices: ['patient', 'slide'] as const,
              default: 'patient' as const,
              describe: 'independence group: never its own neighbour; bootstrap and CV folds draw whole groups',
            })
            .option('out', { type: 'string', demandOption: true })
            .option('split', { choices: ['train', 'val', 'test', 'all'] as const, default: 'all' as const })
            .option('fold', { type: 'number', default: 0 })
            .option('tiles-per-slide', { type: 'number', default: 8 })
            .option('max-samples', {
              type: 'number',
              default: 4000,
              describe: 'cap on embeddings (the neighbour scan grows with its square)',
            })
            .option('k', {
              type: 'string',
              default: '5,11,21',
              describe: 'RI/MaRI neighbourhood sizes; the one with the best biological kNN accuracy is used',
            })
            .option('m', { type: 'number', default: 5, describe: 'CRoMa: typed neighbours averaged per type' })
            .option('replicates', { type: 'number', default: 5, describe: 'probe sweep replicates (APD, nIPD)' })
            .option('resamples', { type: 'number', default: 1000 })
            .option('seed', { type: 'number', default: 1 }),
        async (argv) => {
          const given = [argv.model, argv.backbone, argv.features].filter((v) => v !== undefined).length;
          if (given !== 1) throw new ConfigError('give one of --model DIR, --backbone ENCODER.onnx or --features NAME');
          const source = argv.model
            ? { model: argv.model }
            : argv.features
              ? { features: argv.features }
              : { encoder: await checkedEncoder(argv) };
          const { representationStudy } = await import('../../workflows/representation.ts');
          const r = await representationStudy(source, argv.data, argv.out, {
            label: argv.label,
            confounder: argv.confounder,
            group: argv.group,
            split: argv.split,
            fold: argv.fold,
            tilesPerSlide: argv['tiles-per-slide'],
            maxSamples: argv['max-samples'],
            kCandidates: argv.k.split(',').map(Number),
            m: argv.m,
            replicates: argv.replicates,
            resamples: argv.resamples,
            seed: argv.seed,
            engine: engineOptions(argv),
            progress: createProgress,
          });
          const { representationVerdict } = await import('../../eval/index.ts');
          process.stdout.write(`${representationVerdict(r)}\nresults in ${argv.out}\n`);
        },
      )
      .command(
        'merge <dirs..>',
        'Join shard results (from --shard I/N runs) into one result identical to an unsharded run',
        (c) =>
          c
            .positional('dirs', { type: 'string', array: true, demandOption: true })
            .option('suite', { type: 'string', describe: 'suite YAML (default: the copy each shard folder keeps)' })
            .option('out', { type: 'string', demandOption: true }),
        async (argv) => {
          const { mergeRobustnessShards } = await import('../../workflows/robustness.ts');
          printCriteria(await mergeRobustnessShards(argv.dirs as string[], argv.out, argv.suite), argv.out);
        },
      ),
  );
}
