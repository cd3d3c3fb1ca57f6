import type { Argv } from 'yargs';
import { describeCommand } from '../commandIndex.ts';
import { ConfigError } from '../../core/index.ts';
import { BACKENDS } from '../engineOptions.ts';
import { createProgress } from '../progress.ts';

function parseReplicas(v: string | undefined): number | 'auto' | undefined {
  if (v === undefined || v === 'auto') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--replicas: expected a positive integer or auto, got "${v}"`);
  return n;
}

export function trainCommand(y: Argv): Argv {
  return y.command(
    'train',
    describeCommand('train'),
    (c) =>
      c
        .option('config', { type: 'string', describe: 'experiment YAML (experiments/*.yaml)' })
        .option('out', { type: 'string', describe: 'model directory (default: models/<experiment name>)' })
        .option('epochs', { type: 'number', describe: 'override train.epochs' })
        .option('backend', { choices: BACKENDS, describe: 'override the backend' })
        .option('seed', { type: 'number', describe: 'override the seed' })
        .option('seeds', {
          type: 'number',
          describe: 'heads on cached embeddings: train N seeds and report mean, SD and the across-seed interval',
        })
        .option('replicas', {
          type: 'string',
          describe: 'override train.replicas: data-parallel replicas on wasm, a number or auto (one per core)',
        })
        .option('data', { type: 'string', describe: "train on this tile dataset instead of the experiment file's" })
        .option('set', {
          type: 'string',
          array: true,
          describe: 'override a key of the experiment file: --set train.lr=0.001 (repeatable; validated like the file)',
        })
        .option('resume', { type: 'string', describe: 'continue an interrupted run: its model directory or run id' })
        .option('force', { type: 'boolean', default: false, describe: 'replace a trained model already in --out' })
        .option('tracking-dir', { type: 'string', describe: 'MLflow file store (default ./mlruns)' }),
    async (argv) => {
      // TensorFlow.js loads with the training workflow only, not for --help or a mistyped flag.
      const { trainExperiment } = await import('../../workflows/train.ts');
      const r = await trainExperiment(argv.config, {
        out: argv.out,
        sets: argv.set,
        epochs: argv.epochs,
        seed: argv.seed,
        seeds: argv.seeds,
        backend: argv.backend,
        replicas: parseReplicas(argv.replicas),
        data: argv.data,
        resume: argv.resume,
        force: argv.force,
        trackingDir: argv['tracking-dir'],
        progress: createProgress,
      });
      process.stdout.write(`${r.summary}; model: ${r.out}; run ${r.runId}\n`);
    },
  );
}
