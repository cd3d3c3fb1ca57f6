import { InputError, type EncoderEntry, type EncoderSpec, type TileBatch } from '../core/index.ts';
import { inputDims, prepareInput, type InputLayout } from './preprocess.ts';
import { firstLine, openSession, ort, runSession, type EngineOptions } from './session.ts';

/** What a frozen encoder's graph looks like once checked: its input name and layout, its output and width. */
export interface EncoderShape {
  input: string;
  output: string;
  layout: InputLayout;
  dim: number;
  /** A batch dimension fixed in the graph (exports often fix it at 1): tiles then go through in chunks of it. */
  fixedBatch?: number;
}

type Meta = ort.InferenceSession.ValueMetadata;
const shapeOf = (m: Meta) => (m.isTensor ? m.shape : []);
const show = (dims: readonly (number | string)[]) => `[${dims.join(', ')}]`;

/**
 * Checks an external encoder's input against the experiment's description: one float image input of
 * rank 4 with 3 channels first (NCHW) or last (NHWC), spatial dims fixed at inputSize or symbolic (then
 * inputSize resolves them); a symbolic channel dim cannot be resolved.
 */
function checkInput(path: string, spec: EncoderSpec, inputs: readonly Meta[]): { name: string; layout: InputLayout; fixedBatch?: number } {
  if (inputs.length !== 1)
    throw new InputError(
      `${path}: the encoder has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); gradelab feeds one image batch`,
    );
  const m = inputs[0];
  if (!m.isTensor || m.type !== 'float32')
    throw new InputError(`${path}: input "${m.name}" is ${m.isTensor ? m.type : 'not a tensor'}; gradelab feeds float32 images`);
  const dims = m.shape;
  if (dims.length !== 4)
    throw new InputError(
      `${path}: input "${m.name}" has rank ${dims.length} ${show(dims)}; an image encoder takes [N, 3, H, W] or [N, H, W, 3]`,
    );
  const layout = dims[1] === 3 ? 'NCHW' : dims[3] === 3 ? 'NHWC' : undefined;
  if (!layout) {
    const symbolic = typeof dims[1] === 'string' || typeof dims[3] === 'string';
    throw new InputError(
      `${path}: input "${m.name}" ${show(dims)} has no channel dim of 3${symbolic ? ' (a symbolic channel dim cannot be resolved; export with 3 channels fixed)' : ''}`,
    );
  }
  const spatial = layout === 'NCHW' ? [dims[2], dims[3]] : [dims[1], dims[2]];
  for (const d of spatial) {
    if (typeof d === 'number' && d > 0 && d !== spec.inputSize)
      throw new InputError(`${path}: the encoder takes ${spatial.join(' x ')} pixels but inputSize is ${spec.inputSize}`);
  }
  const batch = dims[0];
  return {
    name: m.name,
    layout: { size: spec.inputSize, layout, mean: spec.mean, std: spec.std },
    ...(typeof batch === 'number' && batch > 0 ? { fixedBatch: batch } : {}),
  };
}

/**
 * A frozen external encoder (a pathology foundation model exported to ONNX by its user) that turns
 * tiles into embeddings. Opening it checks the graph (input rank, layout, resolvable dims) and runs one
 * probe tile to learn the embedding width and refuse outputs that are not one vector per tile.
 */
export class OnnxEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly path: string,
    readonly shape: EncoderShape,
    readonly engine: string,
  ) {}

  static async open(path: string, spec: EncoderSpec, options: EngineOptions = {}): Promise<OnnxEncoder> {
    const { session, description } = await openSession(path, options);
    try {
      const input = checkInput(path, spec, session.inputMetadata);
      const outputs = session.outputMetadata;
      const out = outputs[0];
      const declared = shapeOf(out);
      if (declared.length && declared.length !== 2)
        throw new InputError(
          `${path}: output "${out.name}" ${show(declared)} is not a feature vector per tile; export the pooled embedding (e.g. the class token), shape [N, d]`,
        );
      // Probe with the batch the graph takes: 1 where it is free, its fixed size otherwise.
      const probeN = input.fixedBatch ?? 1;
      const probe = new Float32Array(probeN * 3 * spec.inputSize * spec.inputSize).fill(0.5);
      const dims = inputDims(probeN, input.layout);
      let result: ort.Tensor;
      try {
        result = (await session.run({ [input.name]: new ort.Tensor('float32', probe, dims) }, [out.name]))[out.name];
      } catch (err) {
        throw new InputError(`${path}: the encoder fails on a ${show(dims)} input: ${firstLine(err)}`, { cause: err });
      }
      if (result.dims.length !== 2 || result.dims[0] !== probeN)
        throw new InputError(
          `${path}: output "${out.name}" has shape ${show(result.dims)} for ${probeN === 1 ? 'one tile' : `${probeN} tiles`}; gradelab needs one feature vector per tile, [N, d]`,
        );
      const y = result.data as Float32Array;
      if (!y.every(Number.isFinite)) throw new InputError(`${path}: the encoder returns non-finite values on a grey tile`);
      return new OnnxEncoder(
        session,
        path,
        { input: input.name, output: out.name, layout: input.layout, dim: result.dims[1], fixedBatch: input.fixedBatch },
        description,
      );
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  get dim(): number {
    return this.shape.dim;
  }

  /**
   * n x d embeddings of a tile batch (NHWC in [0, 1], any tile size: resized to the encoder's). A graph
   * with a fixed batch size gets chunks of that size, the last one padded with copies of its last tile.
   */
  async embed(batch: TileBatch): Promise<Float32Array> {
    const input = prepareInput(batch, this.shape.layout);
    const fixed = this.shape.fixedBatch;
    if (!fixed || fixed === batch.n) return this.run(input, batch.n);
    const per = input.length / batch.n;
    const out = new Float32Array(batch.n * this.dim);
    for (let i = 0; i < batch.n; i += fixed) {
      const chunk = new Float32Array(fixed * per);
      const have = Math.min(fixed, batch.n - i);
      chunk.set(input.subarray(i * per, (i + have) * per));
      for (let j = have; j < fixed; j++) chunk.copyWithin(j * per, (have - 1) * per, have * per);
      out.set((await this.run(chunk, fixed)).subarray(0, have * this.dim), i * this.dim);
    }
    return out;
  }

  private async run(input: Float32Array, n: number): Promise<Float32Array> {
    const [y] = await runSession(this.session, this.shape.input, input, inputDims(n, this.shape.layout), [this.shape.output], this.path);
    return y;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Checks an ONNX file against the registry entry it claims to export, before any tile is embedded: the
 * input size (OnnxEncoder.open checks it against the spec filled from the entry) and the embedding width.
 */
export async function checkRegistryEncoder(spec: EncoderSpec, entry: EncoderEntry): Promise<void> {
  const encoder = await OnnxEncoder.open(spec.onnx, spec);
  try {
    if (encoder.dim !== entry.dim)
      throw new InputError(
        `${spec.onnx}: embeddings ${encoder.dim} wide, but ${entry.title} gives ${entry.dim} (${entry.output}); export it with docs/export-encoder-to-onnx.py`,
      );
  } finally {
    await encoder.close();
  }
}
