import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  logitTemperature,
  headProbabilities,
  InputError,
  MODEL_FILES,
  type ModelMeta,
  type ModelPredictor,
  type RgbImage,
  type TileBatch,
  type TileOutputs,
} from '../core/index.ts';
import { MODEL_FEATURES, MODEL_INPUT, MODEL_LOGITS, readContract } from '../onnx/index.ts';
import { inputDims, prepareImages, prepareInput, type InputLayout } from './preprocess.ts';
import { openSession, runSession, type EngineOptions, type ort } from './session.ts';

export const MODEL_ONNX = MODEL_FILES.onnx;

/** Largest batch sent to ONNX Runtime at once: bigger batches only cost memory. */
const MAX_BATCH = 64;

/**
 * A model directory's model.onnx behind the Predictor interface (ONNX Runtime: MLAS kernels on every
 * core, or CUDA). The file must be the one made from this directory's weights: its recorded weights
 * SHA-256 is checked against gradelab.json, so a stale export is never scored.
 */
export class OnnxPredictor implements ModelPredictor {
  readonly k: number;
  private readonly layout: InputLayout;
  /** Tiles per run: MAX_BATCH, or the batch size a frozen encoder's graph fixes (chunks are padded to it). */
  private readonly batch: number;
  private readonly fixed: boolean;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly meta: ModelMeta,
    readonly engine: string,
    private readonly path: string,
  ) {
    this.k = meta.classes.length;
    this.layout = { size: meta.inputSize, layout: 'NCHW' };
    this.fixed = !!meta.encoder?.fixedBatch;
    this.batch = meta.encoder?.fixedBatch ?? MAX_BATCH;
  }

  static async load(dir: string, meta: ModelMeta, options: EngineOptions = {}): Promise<OnnxPredictor> {
    const path = join(dir, MODEL_ONNX);
    if (!existsSync(path))
      throw new InputError(`${dir}: no ${MODEL_ONNX}; write it with \`gradelab export --model ${dir}\` or use --engine tfjs`);
    const contract = readContract(path);
    if (!contract)
      throw new InputError(`${path}: not written by gradelab (no gradelab metadata); export it with \`gradelab export --model ${dir}\``);
    if (meta.weightsSha256 && contract.weightsSha256 !== meta.weightsSha256) {
      throw new InputError(
        `${path} was exported from other weights than ${dir}'s (weights SHA-256 ${contract.weightsSha256.slice(0, 12)} vs ${meta.weightsSha256.slice(0, 12)}); re-export with \`gradelab export --model ${dir}\``,
      );
    }
    if ((contract.temperature ?? 1) !== logitTemperature(meta))
      throw new InputError(
        `${path} records temperature ${contract.temperature ?? 1}, ${dir}/gradelab.json ${logitTemperature(meta)}; run \`gradelab calibrate\` again`,
      );
    if (contract.inputSize !== meta.inputSize || contract.head !== meta.head || contract.classes.join() !== meta.classes.join()) {
      throw new InputError(`${path} does not match ${dir}/gradelab.json (input size, head or classes differ); re-export it`);
    }
    const { session, description } = await openSession(path, options);
    return new OnnxPredictor(session, meta, description, path);
  }

  async run(batch: TileBatch): Promise<TileOutputs> {
    if (batch.n > this.batch) {
      const parts: TileOutputs[] = [];
      for (const b of splitBatch(batch, this.batch)) parts.push(await this.run(b));
      return concatOutputs(parts);
    }
    return this.infer(prepareInput(batch, this.layout), batch.n);
  }

  async runImages(images: readonly RgbImage[]): Promise<TileOutputs> {
    const parts: TileOutputs[] = [];
    for (let i = 0; i < images.length; i += this.batch)
      parts.push(await this.infer(prepareImages(images.slice(i, i + this.batch), this.layout), Math.min(this.batch, images.length - i)));
    return parts.length === 1 ? parts[0] : concatOutputs(parts);
  }

  /** A chunk short of a fixed batch, padded with copies of its last tile; the padding's outputs are dropped. */
  private async infer(input: Float32Array, n: number): Promise<TileOutputs> {
    if (!this.fixed || n === this.batch) return this.inferExact(input, n);
    const per = input.length / n;
    const padded = new Float32Array(this.batch * per);
    padded.set(input);
    for (let j = n; j < this.batch; j++) padded.copyWithin(j * per, (n - 1) * per, n * per);
    const r = await this.inferExact(padded, this.batch);
    const keep = (a: Float32Array) => a.slice(0, (a.length / this.batch) * n);
    return { probs: keep(r.probs), features: keep(r.features), logits: keep(r.logits) };
  }

  private async inferExact(input: Float32Array, n: number): Promise<TileOutputs> {
    const [features, logits] = await runSession(
      this.session,
      MODEL_INPUT,
      input,
      inputDims(n, this.layout),
      [MODEL_FEATURES, MODEL_LOGITS],
      this.path,
    );
    return { probs: headProbabilities(logits, n, this.meta.head, this.k, logitTemperature(this.meta)), features, logits };
  }

  async predict(batch: TileBatch): Promise<Float32Array> {
    return (await this.run(batch)).probs;
  }

  async embed(batch: TileBatch): Promise<Float32Array> {
    return (await this.run(batch)).features;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

export function splitBatch(batch: TileBatch, size: number): TileBatch[] {
  const per = batch.height * batch.width * 3;
  const out: TileBatch[] = [];
  for (let i = 0; i < batch.n; i += size) {
    const n = Math.min(size, batch.n - i);
    out.push({ n, height: batch.height, width: batch.width, channels: 3, data: batch.data.subarray(i * per, (i + n) * per) });
  }
  return out;
}

export function concatOutputs(parts: TileOutputs[]): TileOutputs {
  const cat = (key: keyof TileOutputs) => {
    const out = new Float32Array(parts.reduce((s, p) => s + p[key].length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p[key], o);
      o += p[key].length;
    }
    return out;
  };
  return { probs: cat('probs'), features: cat('features'), logits: cat('logits') };
}
