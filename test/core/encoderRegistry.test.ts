import { describe, expect, it } from 'vitest';
import { ENCODERS, encoderEntry, registryEncoderSpec } from '../../src/core/index.ts';

describe('the encoder registry', () => {
  it("gives each encoder the embedding width TRIDENT's patch-encoder table states", () => {
    // mahmoodlab/TRIDENT README, "Patch Encoder | Embedding Dim".
    const trident: Record<string, number> = {
      uni: 1024,
      'uni2-h': 1536,
      'conch-v1.5': 768,
      virchow: 2560,
      virchow2: 2560,
      phikon: 768,
      'phikon-v2': 1024,
      'prov-gigapath': 1536,
      'h-optimus-0': 1536,
      'h-optimus-1': 1536,
      'hibou-l': 1024,
    };
    expect(Object.fromEntries(ENCODERS.map((e) => [e.name, e.dim]))).toEqual(trident);
    // Class token joined to the patch-token mean doubles a ViT-H's 1280.
    for (const e of ENCODERS.filter((x) => x.output === 'class token + mean patch token')) expect(e.dim).toBe(2 * 1280);
  });

  it('fills an experiment encoder from its entry, and names the known ones for an unknown name', () => {
    const { spec } = registryEncoderSpec('h-optimus-0', 'enc/h0.onnx');
    expect(spec).toEqual({
      onnx: 'enc/h0.onnx',
      inputSize: 224,
      mean: [0.707223, 0.578729, 0.703617],
      std: [0.211883, 0.230117, 0.177517],
      mpp: 0.5,
    });
    expect(() => encoderEntry('uni3')).toThrow(/unknown encoder "uni3"; known: uni, uni2-h, conch-v1\.5, virchow/);
  });
});
