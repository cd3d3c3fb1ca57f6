import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyAffineHead, createRng, encoderSpecSchema, headProbabilities, type TileBatch } from '../../src/core/index.ts';
import { composeEncoderHead, OnnxEncoder, openSession } from '../../src/engine/index.ts';
import { runSession } from '../../src/engine/session.ts';
import { encodeModel, floatValueInfo, GraphBuilder, readContract, type ModelContract } from '../../src/onnx/index.ts';
import { tempDir } from '../helpers.ts';

const fixtures = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));
/** The shipped encoder (experiments/encoders), and the test-only one: where each lives. */
const folderOf = (name: string) =>
  name === 'vit-tiny' ? fileURLToPath(new URL('../../experiments/encoders/', import.meta.url)) : fixtures;
const dir = tempDir();

/** The fixture script's input: r = x / (size - 1), g = y / (size - 1), b = r g, in [0, 1], NHWC. */
function ramp(size: number): TileBatch {
  const data = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const r = x / (size - 1);
      const g = y / (size - 1);
      data.set([r, g, r * g], (y * size + x) * 3);
    }
  return { n: 1, height: size, width: size, channels: 3, data };
}

function graph(inputDims: (number | string)[], build: (g: GraphBuilder) => { out: string; dims: (number | string)[] }): string {
  const g = new GraphBuilder();
  g.fresh('x');
  const { out, dims } = build(g);
  const path = join(dir, `g${Math.random().toString(36).slice(2)}.onnx`);
  writeFileSync(
    path,
    encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 't',
        node: g.nodes,
        initializer: g.initializers,
        input: [floatValueInfo('x', inputDims)],
        output: [floatValueInfo(out, dims)],
      },
    }),
  );
  return path;
}

const spec = (onnx: string, inputSize = 64) => encoderSpecSchema.parse({ onnx, inputSize });

describe('frozen ONNX encoders (fixtures exported from PyTorch)', () => {
  for (const name of ['cnn-encoder', 'vit-tiny']) {
    it(`${name}: ONNX Runtime's embedding equals PyTorch's within 1e-4`, async () => {
      const expected = JSON.parse(readFileSync(join(folderOf(name), `${name}.expected.json`), 'utf8'));
      const enc = await OnnxEncoder.open(
        join(folderOf(name), `${name}.onnx`),
        encoderSpecSchema.parse({ onnx: name, inputSize: expected.inputSize, mean: expected.mean, std: expected.std }),
        { threads: 1 },
      );
      expect(enc.dim).toBe(expected.features.length);
      const y = await enc.embed(ramp(expected.inputSize));
      await enc.close();
      const diff = Math.max(...expected.features.map((v: number, i: number) => Math.abs(v - y[i])));
      expect(diff).toBeLessThan(1e-4);
    });
  }

  it('takes tiles of another size, resized to the encoder input', async () => {
    const enc = await OnnxEncoder.open(join(folderOf('vit-tiny'), 'vit-tiny.onnx'), spec(join(folderOf('vit-tiny'), 'vit-tiny.onnx')));
    const rng = createRng('tiles');
    const batch: TileBatch = {
      n: 3,
      height: 128,
      width: 128,
      channels: 3,
      data: Float32Array.from({ length: 3 * 128 * 128 * 3 }, () => rng.next()),
    };
    const y = await enc.embed(batch);
    await enc.close();
    expect(y.length).toBe(3 * 48);
    expect(y.every(Number.isFinite)).toBe(true);
  });

  it('an encoder whose graph fixes the batch size (1 or 4) embeds any number of tiles, in padded chunks', async () => {
    for (const fixed of [1, 4]) {
      // Channel means of each tile, reshaped with a constant [fixed, 3]: any other batch fails in ONNX Runtime.
      const path = graph([fixed, 3, 8, 8], (g) => {
        const shape = g.constantInt64(`shape${fixed}`, [fixed, 3]);
        return { out: g.node('Reshape', [g.node('GlobalAveragePool', ['x'], 'p'), shape], 'y'), dims: [fixed, 3] };
      });
      const enc = await OnnxEncoder.open(path, spec(path, 8));
      expect(enc.shape.fixedBatch).toBe(fixed);
      const rng = createRng(`fixed-${fixed}`);
      const n = 5;
      const data = Float32Array.from({ length: n * 8 * 8 * 3 }, () => rng.next());
      const y = await enc.embed({ n, height: 8, width: 8, channels: 3, data });
      expect(y.length).toBe(n * 3);
      for (let t = 0; t < n; t++)
        for (let c = 0; c < 3; c++) {
          let m = 0;
          for (let p = 0; p < 64; p++) m += data[(t * 64 + p) * 3 + c] / 64;
          expect(y[t * 3 + c], `tile ${t} channel ${c}`).toBeCloseTo((m - spec(path, 8).mean[c]) / spec(path, 8).std[c], 4);
        }
      await enc.close();
    }
  });

  describe('refuses a bad encoder with one line naming the file', () => {
    const open = (path: string, size = 8) => OnnxEncoder.open(path, spec(path, size));
    it('unreadable bytes', async () => {
      const path = join(dir, 'junk.onnx');
      writeFileSync(path, Buffer.from('not a protobuf at all, just text'));
      await expect(open(path)).rejects.toThrow(new RegExp(`^${path}: ONNX Runtime cannot load it: .+`));
    });
    it('truncated file', async () => {
      const path = join(dir, 'cut.onnx');
      writeFileSync(path, readFileSync(join(folderOf('vit-tiny'), 'vit-tiny.onnx')).subarray(0, 5000));
      await expect(open(path, 64)).rejects.toThrow(/cut\.onnx: ONNX Runtime cannot load it/);
    });
    it('an input of the wrong rank', async () => {
      const path = graph(['N', 64], (g) => ({ out: g.node('Relu', ['x'], 'y'), dims: ['N', 64] }));
      await expect(open(path)).rejects.toThrow(/has rank 2 \[N, 64\]; an image encoder takes/);
    });
    it('a channel dim it cannot resolve', async () => {
      const path = graph(['N', 'C', 8, 8], (g) => ({ out: g.node('GlobalAveragePool', ['x'], 'y'), dims: ['N', 'C', 1, 1] }));
      await expect(open(path)).rejects.toThrow(/no channel dim of 3 \(a symbolic channel dim cannot be resolved/);
    });
    it('a fixed size other than inputSize', async () => {
      const path = graph(['N', 3, 16, 16], (g) => ({
        out: g.node('Flatten', [g.node('GlobalAveragePool', ['x'], 'p')], 'y', { axis: 1 }),
        dims: ['N', 3],
      }));
      await expect(open(path, 8)).rejects.toThrow(/takes 16 x 16 pixels but inputSize is 8/);
    });
    it('an output that is not one vector per tile', async () => {
      const path = graph(['N', 3, 8, 8], (g) => ({ out: g.node('Relu', ['x'], 'y'), dims: ['N', 3, 8, 8] }));
      await expect(open(path)).rejects.toThrow(/is not a feature vector per tile; export the pooled embedding/);
      const flat = graph(['N', 3, 8, 8], (g) => ({ out: g.node('Flatten', ['x'], 'y', { axis: 2 }), dims: ['?', '?'] }));
      await expect(open(flat)).rejects.toThrow(/has shape \[3, 64\] for one tile/);
    });
  });

  it('composes encoder and head into one model.onnx: features are the embedding, logits the head of it', async () => {
    const src = join(folderOf('vit-tiny'), 'vit-tiny.onnx');
    const s = spec(src);
    const enc = await OnnxEncoder.open(src, s, { threads: 1 });
    const rng = createRng('head');
    const head = {
      dim: 48,
      outputs: 5,
      weights: Float32Array.from({ length: 48 * 5 }, () => rng.normal() * 0.2),
      bias: Float32Array.from({ length: 5 }, (_, i) => 1 - i * 0.5),
    };
    const contract: ModelContract = {
      task: 'prostate',
      head: 'ordinal',
      classes: [0, 1, 2, 3, 4, 5],
      inputSize: 64,
      tileSize: 128,
      mpp: 1,
      backbone: 'onnx:vit-tiny.onnx',
      normalisation: { mean: s.mean, std: s.std },
      weightsSha256: 'b'.repeat(64),
      gradelabVersion: 'test',
    };
    const path = join(dir, 'composed.onnx');
    writeFileSync(path, composeEncoderHead(src, enc.shape, s, head, contract));
    const x = ramp(64);
    const embedding = await enc.embed(x);
    await enc.close();
    const { session } = await openSession(path, { threads: 1 });
    // The composed graph takes RGB in [0, 1] NCHW and normalises inside.
    const nchw = new Float32Array(3 * 64 * 64);
    for (let p = 0; p < 64 * 64; p++) for (let c = 0; c < 3; c++) nchw[c * 4096 + p] = x.data[p * 3 + c];
    const [features, logits] = await runSession(session, 'image', nchw, [1, 3, 64, 64], ['features', 'logits'], path);
    await session.release();
    expect(Math.max(...features.map((v, i) => Math.abs(v - embedding[i])))).toBeLessThan(1e-5);
    const expected = applyAffineHead(head, embedding, 1);
    expect(Math.max(...logits.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-4);
    expect(headProbabilities(logits, 1, 'ordinal', 6).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(readContract(path)).toEqual(contract);
  });
});
