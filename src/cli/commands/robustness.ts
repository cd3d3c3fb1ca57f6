import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Argv } from 'yargs';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { stringify } from 'csv-stringify/sync';
import { ConfigError, log, checkSameInput, readModelMeta, writeFileAtomic } from '../../core/index.ts';
import { loadSplit, openDatasetForModel, spreadTilesPerSlide, tilesOfPartition } from '../../data/index.ts';
import {
  appendUnitResult,
  fmtEstimate,
  MIN_PATIENTS_FOR_VERDICT,
  loadSuite,
  readUnitResults,
  runSuiteUnits,
  shardUnits,
  suiteUnits,
  summariseSuite,
  writeChart,
  type SuiteRole,
  type SuiteSummary,
  type UnitResult,
} from '../../eval/index.ts';
import { hasOodBundle, loadOodBundle } from '../../ood/index.ts';
import { FileStore, openStore, startRun, type Tracker } from '../../track/index.ts';
import { engineFlags, engineOptions } from '../engineOptions.ts';
import { createProgress } from '../progress.ts';
import { parseShard } from '../shard.ts';
import { modelScorer } from '../modelScorer.ts';

export { modelScorer } from '../modelScorer.ts';

/** Corruption errors against the baseline: mCE over the corruptions, one-off conditions beside it. */
function corruptionLines(summary: SuiteSummary, f: (v: number | null) => string): string[] {
  const corruptions = summary.corruptionErrors.filter((c) => !c.oneOff);
  const oneOffs = summary.corruptionErrors.filter((c) => c.oneOff);
  if (summary.corruptionErrors.every((c) => c.ce === null)) return ['Corruption errors need a baseline model (--baseline).'];
  return [
    `mCE ${f(summary.mCE)} and relative mCE ${f(summary.relativeMCE)}: ImageNet-C's definitions, averaged over the ${corruptions.length} corruptions at severities 1-5 only${summary.relativeUndefined.length ? ` (relative CE undefined for ${summary.relativeUndefined.join(', ')}: the baseline's error did not move from clean)` : ''}. One-off conditions are reported beside, never averaged in.`,
    '',
    '| condition | kind | CE | relative CE |',
    '|---|---|---|---|',
    ...[...corruptions, ...oneOffs].map(
      (c) => `| ${c.condition} | ${c.oneOff ? 'one-off' : 'corruption (severities)'} | ${f(c.ce)} | ${f(c.relativeCe)} |`,
    ),
  ];
}

/** Where a run keeps a copy of its suite file. */
const SUITE_COPY = 'suite.yaml';

export async function writeSuiteOutputs(out: string, summary: SuiteSummary): Promise<void> {
  await writeFileAtomic(
    join(out, 'results.json'),
    JSON.stringify(summary, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  // Unit results come back from JSON, where an undefined number (NaN) is null: both print empty.
  const x4 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '');
  const rows = summary.units.map((u) => [
    u.condition,
    u.severity,
    u.slides,
    x4(u.qwk.value),
    x4(u.qwk.ci95[0]),
    x4(u.qwk.ci95[1]),
    x4(u.qwkDrop),
    x4(u.accuracy.value),
    x4(u.ece),
    x4(u.oodFlagRate),
    x4(u.ce),
  ]);
  await writeFileAtomic(
    join(out, 'results.csv'),
    stringify([
      ['condition', 'severity', 'slides', 'qwk', 'qwk_ci_low', 'qwk_ci_high', 'qwk_drop', 'accuracy', 'ece', 'ood_flag_rate', 'ce'],
      ...rows,
    ]),
  );
  const f = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
  const md = [
    `# Robustness: ${summary.suite}`,
    '',
    `**${summary.passed ? 'PASS' : 'FAIL'}**: ${summary.criteria.filter((c) => c.pass).length} of ${summary.criteria.length} criteria pass${summary.criteria.some((c) => c.status === 'not-evaluable') ? ` (${summary.criteria.filter((c) => c.status === 'not-evaluable').length} not evaluable)` : ''}. Clean: QWK ${fmtEstimate(summary.clean.qwk)}, accuracy ${fmtEstimate(summary.clean.accuracy)} on ${summary.clean.slides} slides, ${summary.tilesPerSlide} tiles per slide, anomalous slides excluded.`,
    '',
    '| criterion | result | evidence |',
    '|---|---|---|',
    ...summary.criteria.map(
      (c) => `| ${c.criterion} | ${c.status === 'not-evaluable' ? 'NOT EVALUABLE' : c.pass ? 'PASS' : 'FAIL'} | ${c.evidence} |`,
    ),
    '',
    `QWK drops carry a paired 95% CI (the same slides, clean and perturbed, resampled by patient); a drop whose interval includes 0 is marked "n.s.": the data do not show it; "no verdict": fewer than ${MIN_PATIENTS_FOR_VERDICT} patients, or identical in every resample.`,
    '',
    '| condition | severity | QWK (95% CI) | QWK drop (paired 95% CI) | accuracy | ECE | OOD flag rate |',
    '|---|---|---|---|---|---|---|',
    ...summary.units.map(
      (u) =>
        `| ${u.condition} | ${u.severity || '-'} | ${fmtEstimate(u.qwk)} | ${f(u.qwkDrop)}${u.qwkDropCi ? ` (${f(u.qwkDropCi[0])} to ${f(u.qwkDropCi[1])})${u.dropNote ? ' no verdict' : u.dropSignificant ? '' : ' n.s.'}` : ''} | ${f(u.accuracy.value)} | ${f(u.ece)} | ${f(u.oodFlagRate)} |`,
    ),
    '',
    ...(summary.severitySeparation.length
      ? [
          'Does severity matter? QWK at the highest severity minus at the lowest, paired on the same slides:',
          '',
          '| corruption | severities | QWK difference (95% CI) | separated |',
          '|---|---|---|---|',
          ...summary.severitySeparation.map(
            (s) =>
              `| ${s.condition} | ${s.low} vs ${s.high} | ${fmtEstimate(s.difference)} | ${s.note ? `no verdict: ${s.note}` : s.significant ? 'yes' : 'no: more slides needed to tell them apart'} |`,
          ),
          '',
        ]
      : []),
    ...corruptionLines(summary, f),
  ];
  await writeFileAtomic(join(out, 'summary.md'), `${md.join('\n')}\n`);
  const curve = summary.units
    .filter((u) => u.severity > 0)
    .map((u) => ({ condition: u.condition, severity: u.severity, qwk: u.qwk.value }));
  if (curve.length) {
    await writeChart(join(out, 'qwk-vs-severity'), {
      title: `QWK against severity (clean ${f(summary.clean.qwk.value)})`,
      width: 380,
      height: 260,
      data: { values: curve },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'severity', type: 'ordinal' },
        y: { field: 'qwk', type: 'quantitative', scale: { zero: false } },
        color: { field: 'condition', type: 'nominal' },
      },
    });
  }
  const heat = summary.units.map((u) => ({ condition: u.condition, severity: u.severity ? String(u.severity) : 'once', drop: u.qwkDrop }));
  await writeChart(join(out, 'qwk-drop-heatmap'), {
    title: 'QWK drop against clean',
    data: { values: heat },
    width: 200,
    height: Math.max(80, 22 * new Set(summary.units.map((u) => u.condition)).size),
    encoding: {
      x: { field: 'severity', type: 'ordinal', sort: ['once', '1', '2', '3', '4', '5'] },
      y: { field: 'condition', type: 'nominal' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'drop', type: 'quantitative', scale: { scheme: 'reds', domainMin: 0 } } } },
      { mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'drop', type: 'quantitative', format: '.2f' } } },
    ],
  });
}

export function robustnessCommand(y: Argv): Argv {
  return y.command(
    'robustness',
    'Run a robustness suite (perturbations at severities, against acceptance criteria); exit 3 when a criterion fails',
    (s) =>
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
            const { suite: loaded, criteria } = loadSuite(argv.suite);
            const shard = parseShard(argv.shard);
            const ds = await openDatasetForModel(argv.data, argv.model);
            if (argv.baseline)
              checkSameInput(
                { dir: argv.model, meta: readModelMeta(argv.model) },
                { dir: argv.baseline, meta: readModelMeta(argv.baseline) },
              );
            const partition = argv.split === 'all' ? ds.tiles : tilesOfPartition(ds, await loadSplit(argv.data), argv.split, argv.fold);
            const perSlide = argv['tiles-per-slide'] ?? loaded.tilesPerSlide;
            const suite = { ...loaded, tilesPerSlide: perSlide };
            if (!Number.isInteger(perSlide) || perSlide < 1)
              throw new ConfigError(`--tiles-per-slide must be a positive integer, got ${perSlide}`);
            const tiles = spreadTilesPerSlide(
              partition.filter((t) => !t.anomaly && t.grade !== undefined),
              perSlide,
            );
            if (!tiles.length)
              throw new ConfigError(
                `${argv.data}: no labelled ${argv.split === 'all' ? '' : `${argv.split} `}tiles${argv.split === 'all' ? '' : ` in fold ${argv.fold}`}`,
              );
            const models: [string, string][] = [
              ['model', argv.model],
              ...(argv.baseline ? [['baseline', argv.baseline] as [string, string]] : []),
            ];
            // Every model directory and its detectors are checked before anything is written.
            for (const [, dir] of models) {
              readModelMeta(dir);
              if (hasOodBundle(dir)) loadOodBundle(dir);
            }
            // The suite travels with its results, so merging shards needs no --suite and cannot mix suites.
            await mkdir(argv.out, { recursive: true });
            // With --tiles-per-slide the copy records the number the suite really ran with.
            const suiteText = readFileSync(argv.suite, 'utf8');
            await writeFileAtomic(
              join(argv.out, SUITE_COPY),
              perSlide === loaded.tilesPerSlide ? suiteText : stringifyYaml({ ...parseYaml(suiteText), tilesPerSlide: perSlide }),
            );
            const all = [
              { condition: 'clean', severity: 0, transform: undefined as Record<string, unknown> | undefined },
              ...suiteUnits(suite),
            ];
            const mine = shardUnits(all, shard);
            const meta = readModelMeta(argv.model);
            let parent: Tracker | undefined;
            const store = openStore({ trackingDir: argv['tracking-dir'] });
            const parentTags: Record<string, string> = {
              'gradelab.suite': suite.name,
              ...(meta.runId && store instanceof FileStore ? { 'mlflow.parentRunId': meta.runId } : {}),
            };
            parent = await startRun('robustness', `${suite.name}${shard ? ` shard ${shard.index}/${shard.count}` : ''}`, {
              trackingDir: argv['tracking-dir'],
              tags: parentTags,
            });
            const progress = createProgress('conditions', ' | {name}');
            const resultsPath = (role: string) => join(argv.out, `${role}${shard ? `.shard-${shard.index}-of-${shard.count}` : ''}.jsonl`);
            const roles: (SuiteRole & { dispose(): Promise<void> | void })[] = [];
            try {
              for (const [role, dir] of models) {
                const done = new Set(readUnitResults(resultsPath(role)).map((r) => `${r.condition}/${r.severity}`));
                const scorer = await modelScorer(dir, engineOptions(argv));
                roles.push({
                  role,
                  scorer,
                  pending: mine.filter((u) => !done.has(`${u.condition}/${u.severity}`)),
                  dispose: scorer.dispose,
                });
              }
              const pending = new Set(roles.flatMap((r) => r.pending.map((u) => `${u.condition}/${u.severity}`)));
              progress.start(mine.length, `suite ${suite.name}`);
              progress.increment(mine.length - pending.size);
              await runSuiteUnits(ds, tiles, roles, {
                resamples: argv.resamples,
                seed: argv.seed,
                onStep: (unit, block, blocks) => {
                  progress.update({
                    name: `${unit.condition}${unit.severity ? ` ${unit.severity}` : ''}${blocks > 1 ? ` (block ${block + 1}/${blocks})` : ''}`,
                  });
                  if (block === blocks - 1) progress.increment();
                },
                onUnit: async (role, r) => {
                  appendUnitResult(resultsPath(role), r);
                  const child = await parent.startChild(`${role}: ${r.condition}${r.severity ? ` severity ${r.severity}` : ''}`, {
                    'gradelab.condition': r.condition,
                    'gradelab.severity': String(r.severity),
                    'gradelab.role': role,
                  });
                  await child.logMetrics({
                    qwk: r.qwk.value,
                    accuracy: r.accuracy.value,
                    ece: r.ece,
                    ...(r.oodFlagRate !== null ? { ood_flag_rate: r.oodFlagRate } : {}),
                  });
                  await child.end();
                },
              });
            } finally {
              progress.stop();
              for (const r of roles) await r.dispose();
            }
            if (shard) {
              await parent.end();
              log.info(
                `shard ${shard.index}/${shard.count} done: ${mine.length} conditions; join shards with \`gradelab robustness merge ${argv.out} ...\``,
              );
              return;
            }
            const summary = summariseSuite(
              suite,
              criteria,
              readUnitResults(join(argv.out, 'model.jsonl')),
              argv.baseline ? readUnitResults(join(argv.out, 'baseline.jsonl')) : undefined,
            );
            await writeSuiteOutputs(argv.out, summary);
            const rel = (p: string) => relative(resolve(argv.out), resolve(p)).split(sep).join('/') || '.';
            await writeFileAtomic(
              join(argv.out, 'suite.json'),
              JSON.stringify(
                {
                  // Relative to the output folder, as every file a report quotes.
                  suite: rel(argv.suite),
                  model: rel(argv.model),
                  baseline: argv.baseline ? rel(argv.baseline) : null,
                  data: rel(argv.data),
                  fold: argv.fold,
                  tiles: tiles.length,
                },
                null,
                2,
              ),
            );
            await parent.logMetrics({
              clean_qwk: summary.clean.qwk.value,
              criteria_passed: summary.criteria.filter((c) => c.pass).length,
              criteria_failed: summary.criteria.filter((c) => !c.pass).length,
            });
            await parent.logArtifact(join(argv.out, 'summary.md'));
            await parent.end();
            for (const c of summary.criteria) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'}  ${c.criterion}  (${c.evidence})\n`);
            process.stdout.write(`${summary.passed ? 'all criteria pass' : 'some criteria FAIL'}; results in ${argv.out}\n`);
            if (!summary.passed) process.exitCode = 3;
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
            const dirs = argv.dirs as string[];
            for (const d of dirs) if (!existsSync(d)) throw new ConfigError(`${d}: shard folder not found`);
            const copies = dirs.map((d) => join(d, SUITE_COPY)).filter((p) => existsSync(p));
            if (!argv.suite && !copies.length)
              throw new ConfigError(`${dirs[0]}: no ${SUITE_COPY} in the shard folders (made by an older gradelab); give --suite`);
            if (!argv.suite && new Set(copies.map((p) => readFileSync(p, 'utf8'))).size > 1)
              throw new ConfigError(`the shard folders ran different suites (their ${SUITE_COPY} differ)`);
            const { suite, criteria } = loadSuite(argv.suite ?? copies[0]);
            const collect = (role: string) => {
              const out: UnitResult[] = [];
              for (const d of dirs) {
                for (const f of readdirSync(d))
                  if (f.startsWith(`${role}.shard-`) && f.endsWith('.jsonl')) out.push(...readUnitResults(join(d, f)));
              }
              return out;
            };
            const model = collect('model');
            const baseline = collect('baseline');
            await mkdir(argv.out, { recursive: true });
            const summary = summariseSuite(suite, criteria, model, baseline.length ? baseline : undefined);
            await writeSuiteOutputs(argv.out, summary);
            for (const c of summary.criteria) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'}  ${c.criterion}  (${c.evidence})\n`);
            if (!summary.passed) process.exitCode = 3;
          },
        ),
  );
}
