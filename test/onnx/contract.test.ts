import { describe, expect, it } from 'vitest';
import { logitTemperature, type ModelMeta } from '../../src/core/index.ts';
import { contractOf } from '../../src/onnx/index.ts';

const meta = (calibration?: ModelMeta['calibration'], head: ModelMeta['head'] = 'softmax') =>
  ({
    task: 'prostate',
    head,
    classes: [0, 1, 2, 3, 4, 5],
    inputSize: 64,
    tileSize: 128,
    mpp: 1,
    backbone: 'resnet',
    weightsSha256: 'a'.repeat(64),
    ...(calibration ? { calibration } : {}),
  }) as unknown as ModelMeta;

const fit = { split: 'val', fold: 0, slides: 20, fittedAt: '2026-12-06T00:00:00Z' };

describe("what divides a model's logits", () => {
  it("temperature scaling's T, in gradelab.json and in model.onnx's contract", () => {
    const m = meta({ method: 'temperature', temperature: 1.7, ...fit });
    expect(logitTemperature(m)).toBe(1.7);
    expect(contractOf(m).temperature).toBe(1.7);
  });

  it("nothing for a pattern model's calibration: it scales the rule's softness, never the logits", () => {
    const m = meta({ method: 'softness', temperature: 1.7, ...fit }, 'patterns');
    expect(logitTemperature(m)).toBe(1);
    expect(contractOf(m).temperature).toBeUndefined();
    expect(logitTemperature(meta())).toBe(1);
  });
});
