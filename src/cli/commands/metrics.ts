import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { EXCLUDE_OPTION } from '../options.ts';
import { mkdir } from 'node:fs/promises';
import { ConfigError, log } from '../../core/index.ts';
import {
  evaluatePredictions,
  fmtEstimate,
  parseExclusions,
  readPredictions,
  writeMetricCharts,
  writeMetricsFiles,
} from '../../eval/index.ts';

export function metricsCommand(y: Argv): Argv {
  return y.command(
    'metrics',
    describeCommand('metrics'),
    (c) =>
      c
        .option('pred', {
          type: 'string',
          demandOption: true,
          describe: 'predictions CSV (slide_id, patient_id, site, scanner, label, pred, prob_0..)',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'output folder: metrics.json, metrics.md, charts' })
        .option('task', { choices: ['prostate', 'breast'] as const, describe: 'default: 6 classes prostate, 3 breast' })
        .option('resamples', { type: 'number', default: 1000, describe: 'bootstrap resamples (over patients)' })
        .option('seed', { type: 'number', default: 1 })
        .option('exclude', EXCLUDE_OPTION)
        .option('charts', { type: 'boolean', default: true, describe: 'render SVG/PNG charts (--no-charts to skip)' }),
    async (argv) => {
      if (!Number.isInteger(argv.resamples) || argv.resamples < 0)
        throw new ConfigError(`--resamples must be a non-negative integer, got ${argv.resamples}`);
      const exclude = parseExclusions(argv.exclude);
      const preds = readPredictions(argv.pred);
      if (!preds.rows.some((r) => r.label !== undefined))
        throw new ConfigError(`${argv.pred}: no row has a label; metrics need labelled cases`);
      const t0 = Date.now();
      const report = evaluatePredictions(preds, { task: argv.task, resamples: argv.resamples, seed: argv.seed, exclude });
      await mkdir(argv.out, { recursive: true });
      const files = await writeMetricsFiles(argv.out, report, { predictions: argv.pred });
      if (argv.charts) files.push(...(await writeMetricCharts(argv.out, report)));
      const m = report.metrics;
      process.stdout.write(
        `QWK ${fmtEstimate(m.qwk)}, accuracy ${fmtEstimate(m.accuracy)}, ECE ${fmtEstimate(m.ece)} on ${report.n} cases, ${report.patients} patients\n`,
      );
      log.info(`wrote ${files.length} files to ${argv.out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    },
  );
}
