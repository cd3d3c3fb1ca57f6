import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError, log } from '../../core/index.ts';
import { JournaledStore, openStore, pidAlive } from '../../track/index.ts';
import { fileStore, findRun, fmtNum, fmtTime, keyMetrics } from '../runsOutput.ts';
import { printJson, printTable } from '../output.ts';

export function runsCommand(y: Argv): Argv {
  return y.command('runs', describeCommand('runs'), (s) =>
    s
      .option('tracking-dir', { type: 'string', describe: 'the file store (default ./mlruns, or MLFLOW_TRACKING_URI when it is a path)' })
      .command(
        'list',
        'Runs, newest first',
        (c) =>
          c
            .option('experiment', { type: 'string', describe: 'only this experiment' })
            .option('all', { type: 'boolean', default: false, describe: 'include runs deleted in MLflow' })
            .option('children', {
              type: 'boolean',
              default: false,
              describe: "include child runs (a robustness suite's conditions, an evaluation's parts)",
            })
            .option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const all = fileStore(argv['tracking-dir']).listRuns(argv.experiment, { all: argv.all });
          const runs = argv.children ? all : all.filter((r) => !r.tags['mlflow.parentRunId']);
          if (runs.length < all.length && !argv.json) log.info(`${all.length - runs.length} child runs hidden (--children lists them)`);
          if (argv.json) return printJson(runs);
          printTable(
            runs.map((r) => [
              r.runId.slice(0, 8),
              r.experimentName,
              r.runName,
              r.lifecycleStage === 'deleted' ? `${r.status} (deleted)` : r.status,
              fmtTime(r.startTime),
              r.tags['mlflow.parentRunId'] ? `child of ${r.tags['mlflow.parentRunId'].slice(0, 8)}` : '',
              keyMetrics(r.metrics),
            ]),
            ['run', 'experiment', 'name', 'status', 'started', 'parent', 'metrics'],
          );
        },
      )
      .command(
        'show <run>',
        'Params, final metrics and tags of one run (id prefix or name)',
        (c) => c.positional('run', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
        async (argv) => {
          const run = findRun(fileStore(argv['tracking-dir']), argv.run);
          if (argv.json) return printJson(run);
          process.stdout.write(
            `run ${run.runId} (${run.runName}) in ${run.experimentName}: ${run.status}${run.lifecycleStage === 'deleted' ? ' (deleted in MLflow)' : ''}, ${fmtTime(run.startTime)} -> ${fmtTime(run.endTime)}, user ${run.userId}\nartifacts: ${run.artifactUri}\n`,
          );
          for (const [title, obj] of [
            ['params', run.params],
            ['metrics', run.metrics],
            ['tags', run.tags],
          ] as const) {
            const entries = Object.entries(obj).sort(([a], [b]) => a.localeCompare(b));
            if (!entries.length) continue;
            process.stdout.write(`\n${title}:\n`);
            printTable(entries.map(([k, v]) => [k, typeof v === 'number' ? fmtNum(v) : String(v).slice(0, 100)]));
          }
        },
      )
      .command(
        'compare <runs..>',
        'Params that differ and final metrics side by side',
        (c) => c.positional('runs', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          const store = fileStore(argv['tracking-dir']);
          const runs = (argv.runs as string[]).map((id) => findRun(store, id));
          if (runs.length < 2) throw new ConfigError('compare needs at least two runs');
          const header = ['', ...runs.map((r) => `${r.runName} (${r.runId.slice(0, 8)})`)];
          const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
          const differing = paramKeys.filter((k) => new Set(runs.map((r) => r.params[k] ?? '')).size > 1);
          process.stdout.write(`params that differ (${differing.length} of ${paramKeys.length}):\n`);
          if (differing.length)
            printTable(
              differing.map((k) => [k, ...runs.map((r) => r.params[k] ?? '-')]),
              header,
            );
          const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
          process.stdout.write('\nfinal metrics:\n');
          printTable(
            metricKeys.map((k) => [k, ...runs.map((r) => (r.metrics[k] === undefined ? '-' : fmtNum(r.metrics[k])))]),
            header,
          );
        },
      )
      .command(
        'sync',
        'Send tracking records kept while the MLflow server was unreachable',
        (c) => c.option('journal-dir', { type: 'string', describe: 'default .gradelab/journal' }),
        async (argv) => {
          const store = openStore({ journalDir: argv['journal-dir'] });
          if (!(store instanceof JournaledStore))
            throw new ConfigError('nothing to sync: MLFLOW_TRACKING_URI is not an http(s) MLflow server');
          const reaped = store.reapStale(pidAlive);
          if (reaped)
            log.info(
              `${reaped} run${reaped === 1 ? '' : 's'} whose process died without ending ${reaped === 1 ? 'it' : 'them'} will be marked FAILED on the server`,
            );
          const quarantinedBefore = store.quarantined().length;
          const before = store.pending();
          const left = await store.flush();
          const quarantined = store.quarantined();
          process.stdout.write(
            `sent ${before - left - (quarantined.length - quarantinedBefore)} records to ${store.rest.base}; ${left} still pending${left ? ` (${store.lastError})` : ''}\n`,
          );
          if (quarantined.length) {
            process.stdout.write(
              `${quarantined.length} record${quarantined.length === 1 ? '' : 's'} the server refused, kept in ${store.dir}/*.quarantine.jsonl (delete them once read):\n`,
            );
            for (const q of quarantined) process.stdout.write(`  run ${q.localId} record ${q.seq} (${q.op}): ${q.error}\n`);
          }
          if (left) process.exitCode = 1;
        },
      )
      .demandCommand(1, 'name a runs subcommand: list, show, compare or sync'),
  );
}
