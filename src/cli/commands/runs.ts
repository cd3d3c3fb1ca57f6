import type { Argv } from 'yargs';
import { ConfigError, log } from '../../core/index.ts';
import { FileStore, JournaledStore, openStore, pidAlive, reapStaleRuns, type RunSummary } from '../../track/index.ts';
import { printJson, printTable } from '../output.ts';

function fileStore(dir: string | undefined): FileStore {
  const store = openStore({
    mustExist: true,
    trackingDir: dir,
    trackingUri: dir
      ? undefined
      : process.env.MLFLOW_TRACKING_URI && /^https?:/i.test(process.env.MLFLOW_TRACKING_URI)
        ? undefined
        : process.env.MLFLOW_TRACKING_URI,
  });
  if (!(store instanceof FileStore))
    throw new ConfigError('runs list/show/compare read the local file store; use the MLflow UI for a server, or pass --tracking-dir');
  reapStaleRuns(store);
  return store;
}

function fmtTime(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '';
}

function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || Math.abs(v) < 0.001 ? v.toExponential(3) : v.toFixed(4);
}

/** The metrics a list shows first: the selected model's, then an evaluation's, then whatever the run has. */
const KEY_METRICS = ['best/val_qwk', 'best/epoch', 'qwk', 'accuracy', 'val/qwk'];

function keyMetrics(metrics: Record<string, number>): string {
  const keys = [...KEY_METRICS.filter((k) => k in metrics), ...Object.keys(metrics).filter((k) => !KEY_METRICS.includes(k))];
  return keys
    .slice(0, 3)
    .map((k) => `${k}=${fmtNum(metrics[k])}`)
    .join(' ');
}

/** A run by id prefix or name; deleted runs are found too when named, and say so. */
function findRun(store: FileStore, id: string): RunSummary {
  const runs = store.listRuns(undefined, { all: true });
  let matches = runs.filter((r) => r.runId.startsWith(id) || r.runName === id);
  if (matches.length > 1 && matches.filter((r) => r.lifecycleStage === 'active').length === 1)
    matches = matches.filter((r) => r.lifecycleStage === 'active');
  if (matches.length === 0) throw new ConfigError(`no run "${id}" in ${store.root}`);
  if (matches.length > 1) throw new ConfigError(`"${id}" matches ${matches.length} runs; give more of the run id`);
  return matches[0];
}

export function runsCommand(y: Argv): Argv {
  return y.command('runs', 'List, show, compare and sync tracked runs (MLflow layout)', (s) =>
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
