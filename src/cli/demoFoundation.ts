import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as yamlStringify } from 'yaml';
import { modelFile } from '../core/index.ts';
import { step, type DemoContext } from './demoData.ts';

const FOUNDATION_DETECTORS = ['msp', 'mahalanobis', 'rmds', 'mahalanobis++', 'knn', 'vim'];

/** The shipped encoder: a Vision Transformer with random weights, the stand-in for a foundation model's ONNX export. */
const ENCODER = fileURLToPath(new URL('../../experiments/encoders/vit-tiny.onnx', import.meta.url));

/**
 * The foundation-model track: a frozen ONNX encoder embeds every training tile once (cached beside the
 * dataset), and three heads with seeds 1, 2, 3 train on the cached embeddings in seconds; seeds.json
 * gives their spread and seeds/ each head's test predictions. Returns the model folder (seed 1's head).
 */
export async function foundationTrack(ctx: DemoContext): Promise<string> {
  const { main, plan, out, data, tracking } = ctx;
  const dir = join(out, 'models', 'foundation');
  if (existsSync(modelFile(dir, 'meta'))) return dir;
  const config = {
    name: 'demo-foundation',
    task: 'prostate',
    data: { dataset: data, fold: 0 },
    model: { backbone: { onnx: ENCODER, inputSize: 64, mpp: 1.0 }, head: 'softmax' },
    augment: [],
    train: {
      epochs: plan.epochs * 2,
      batchSize: 128,
      optimizer: 'adamw',
      lr: 0.003,
      weightDecay: 0.0001,
      warmupEpochs: 1,
      classBalanced: true,
      tilesPerEpoch: plan.tilesPerEpoch * 2,
      patience: 10,
      seeds: 3,
    },
    seed: 1,
    backend: 'auto',
    tracking: { experiment: 'gradelab-demo' },
  };
  const cfg = join(out, 'configs', 'foundation.yaml');
  await writeFile(cfg, yamlStringify(config));
  await step(main, 'train: heads on a frozen encoder, three seeds', ['train', '--config', cfg, '--out', dir, ...tracking]);
  return dir;
}

/**
 * The foundation head's own evidence: its temperature, its OOD detectors on the encoder's features (the Mahalanobis family
 * is what wins on transformer features), its evaluation on the held-out patients, and its report with the
 * representation study the main steps wrote.
 */
export async function foundationReport(ctx: DemoContext, model: string): Promise<string> {
  const { main, out, data, heldOut, tracking } = ctx;
  const at = (name: string) => join(out, 'foundation', name);
  await step(main, 'foundation head: temperature scaling', ['calibrate', '--model', model, '--data', data]);
  // The Mahalanobis family and its neighbours on the encoder's features, against the softmax baseline (the
  // pixel-QC detectors see the same tiles as the main model's; each detector costs its bootstrap).
  await step(main, 'foundation head: OOD detectors', ['ood', 'fit', '--model', model, '--data', data, '--method', ...FOUNDATION_DETECTORS]);
  await step(main, 'foundation head: OOD evaluation', [
    'ood',
    'eval',
    ...['--model', model, '--id', heldOut, '--id-split', 'all', '--ood', heldOut, '--out', at('ood'), '--resamples', '300'],
    ...tracking,
  ]);
  await step(main, 'foundation head: evaluation (held-out patients)', [
    'eval',
    ...['--model', model, '--data', heldOut, '--split', 'all', '--out', at('eval'), '--resamples', '300'],
    ...tracking,
  ]);
  await step(main, 'foundation head: report', [
    'report',
    ...['--run', model, '--eval', at('eval'), '--ood', at('ood'), '--representation', join(out, 'representation', 'foundation')],
    ...['--out', at('report'), ...tracking],
  ]);
  return at('report');
}
