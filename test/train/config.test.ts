import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExperiment, loadTrainConfig, parseTrainConfig } from '../../src/train/index.ts';

const EXPERIMENTS = join(import.meta.dirname, '..', '..', 'experiments');

describe('experiment files', () => {
  it.each(readdirSync(EXPERIMENTS).filter((f) => f.endsWith('.yaml')))('the shipped %s parses and passes its checks', (file) => {
    const { config } = loadTrainConfig(join(EXPERIMENTS, file));
    expect(() => checkExperiment(config, file)).not.toThrow();
  });

  it('a patterns head refuses label smoothing (its targets are soft already) and the breast task', () => {
    const base = {
      name: 'x',
      task: 'prostate',
      data: { dataset: 'd', synth: { slides: 4 } },
      model: { head: 'patterns' },
    };
    const smoothed = parseTrainConfig({ ...base, train: { labelSmoothing: 0.05 } }, 'x.yaml');
    expect(() => checkExperiment(smoothed, 'x.yaml')).toThrow(/x\.yaml: train\.labelSmoothing does not apply to the patterns head/);
    const breast = parseTrainConfig({ ...base, task: 'breast' }, 'x.yaml');
    expect(() => checkExperiment(breast, 'x.yaml')).toThrow(/x\.yaml: model\.head patterns is for the prostate task/);
    expect(() => checkExperiment(parseTrainConfig(base, 'x.yaml'), 'x.yaml')).not.toThrow();
  });
});
