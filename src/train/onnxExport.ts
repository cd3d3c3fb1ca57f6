import * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../core/index.ts';
import {
  encodeModel,
  floatValueInfo,
  GraphBuilder,
  MODEL_FEATURES,
  MODEL_INPUT,
  MODEL_LOGITS,
  writeContract,
  type ModelContract,
} from '../onnx/index.ts';
import { foldBatchNorm } from './fold.ts';

export const ONNX_OPSETS = { min: 11, max: 21, default: 17 } as const;

/** IR version that goes with an opset (onnx/helper.py's VERSION_TABLE). */
function irVersionFor(opset: number): number {
  return opset <= 12 ? 6 : opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

type Config = Record<string, unknown>;
/** A value in the ONNX graph and its layout: 4-D values are NCHW there (NHWC in TF.js), 2-D are [N, C]. */
interface Value {
  name: string;
  rank: number;
}

class Refused extends ConfigError {}

interface GraphNode {
  outboundLayer: tfl.layers.Layer;
  inputTensors: tfl.SymbolicTensor[];
  outputTensors: tfl.SymbolicTensor[];
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/** TF's 'same' padding, as explicit ONNX pads [top, left, bottom, right] (the odd pixel goes last, as in TF). */
function samePads(inH: number, inW: number, kernel: [number, number], strides: [number, number], dilation: [number, number]): number[] {
  const one = (size: number, k: number, s: number, d: number) => {
    const out = Math.ceil(size / s);
    const total = Math.max(0, (out - 1) * s + (k - 1) * d + 1 - size);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = one(inH, kernel[0], strides[0], dilation[0]);
  const [l, r] = one(inW, kernel[1], strides[1], dilation[1]);
  return [t, l, b, r];
}

/** Converts one layer's weights and op; returns the ONNX value of its output. */
class LayerConverter {
  constructor(private readonly g: GraphBuilder) {}

  activation(x: Value, act: string, layer: string): Value {
    const g = this.g;
    switch (act) {
      case 'linear':
        return x;
      case 'relu':
        return { name: g.node('Relu', [x.name], `${layer}/relu`), rank: x.rank };
      case 'relu6':
        return this.clip(x, 0, 6, layer);
      case 'sigmoid':
        return { name: g.node('Sigmoid', [x.name], `${layer}/sigmoid`), rank: x.rank };
      case 'tanh':
        return { name: g.node('Tanh', [x.name], `${layer}/tanh`), rank: x.rank };
      case 'softmax':
        if (x.rank !== 2) throw new Refused(`layer ${layer}: softmax over a ${x.rank}-D tensor`);
        return { name: g.node('Softmax', [x.name], `${layer}/softmax`, { axis: 1 }), rank: 2 };
      default:
        throw new Refused(`layer ${layer}: activation "${act}" has no ONNX conversion in gradelab`);
    }
  }

  clip(x: Value, lo: number, hi: number, layer: string): Value {
    const min = this.g.constant(`${layer}/min`, Float32Array.of(lo), []);
    const max = this.g.constant(`${layer}/max`, Float32Array.of(hi), []);
    return { name: this.g.node('Clip', [x.name, min, max], `${layer}/clip`), rank: x.rank };
  }

  convolution(layer: tfl.layers.Layer, x: Value, inShape: number[]): Value {
    const c = layer.getConfig() as Config;
    const depthwise = layer.getClassName() === 'DepthwiseConv2D';
    if (c.dataFormat && c.dataFormat !== 'channelsLast') throw new Refused(`layer ${layer.name}: data format ${String(c.dataFormat)}`);
    const kernel = pair(c.kernelSize);
    const strides = pair(c.strides ?? 1);
    const dilation = pair(c.dilationRate ?? 1);
    const [kernelT, biasT] = layer.getWeights();
    const [kh, kw, ci, co] = kernelT.shape as number[];
    const k = kernelT.dataSync() as Float32Array;
    // TF.js kernels are [kh, kw, in, out] (depthwise: [kh, kw, channels, multiplier]); ONNX wants
    // [out, in / group, kh, kw], and a depthwise output channel is channel * multiplier + j in both.
    const outChannels = depthwise ? ci * co : co;
    const w = new Float32Array(outChannels * (depthwise ? 1 : ci) * kh * kw);
    for (let y = 0; y < kh; y++)
      for (let xk = 0; xk < kw; xk++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) {
            const v = k[((y * kw + xk) * ci + i) * co + o];
            if (depthwise) w[((i * co + o) * kh + y) * kw + xk] = v;
            else w[((o * ci + i) * kh + y) * kw + xk] = v;
          }
    const inputs = [x.name, this.g.constant(`${layer.name}/kernel`, w, [outChannels, depthwise ? 1 : ci, kh, kw])];
    if (biasT) inputs.push(this.g.constant(`${layer.name}/bias`, Float32Array.from(biasT.dataSync()), [outChannels]));
    const pads = c.padding === 'same' ? samePads(inShape[1], inShape[2], kernel, strides, dilation) : [0, 0, 0, 0];
    if (c.padding !== 'same' && c.padding !== 'valid') throw new Refused(`layer ${layer.name}: padding "${String(c.padding)}"`);
    const y = this.g.node('Conv', inputs, `${layer.name}/conv`, {
      kernel_shape: kernel,
      strides,
      dilations: dilation,
      pads,
      group: depthwise ? ci : 1,
    });
    return this.activation({ name: y, rank: 4 }, String(c.activation ?? 'linear'), layer.name);
  }

  batchNorm(layer: tfl.layers.Layer, x: Value): Value {
    const c = layer.getConfig() as { axis: number | number[]; epsilon: number; center: boolean; scale: boolean };
    const axes = [c.axis].flat();
    if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== x.rank - 1))
      throw new Refused(`layer ${layer.name}: batch norm over axis ${String(c.axis)}`);
    const w = layer.getWeights().map((t) => Float32Array.from(t.dataSync()));
    const n = w[w.length - 1].length;
    let i = 0;
    const gamma = c.scale ? w[i++] : new Float32Array(n).fill(1);
    const beta = c.center ? w[i++] : new Float32Array(n);
    const [mean, variance] = [w[i++], w[i++]];
    const names = [gamma, beta, mean, variance].map((v, j) =>
      this.g.constant(`${layer.name}/${['scale', 'bias', 'mean', 'var'][j]}`, v, [n]),
    );
    return {
      name: this.g.node('BatchNormalization', [x.name, ...names], `${layer.name}/bn`, { epsilon: { float: c.epsilon } }),
      rank: x.rank,
    };
  }

  pooling(layer: tfl.layers.Layer, x: Value, inShape: number[]): Value {
    const c = layer.getConfig() as Config;
    const kernel = pair(c.poolSize);
    const strides = pair(c.strides ?? c.poolSize);
    const pads = c.padding === 'same' ? samePads(inShape[1], inShape[2], kernel, strides, [1, 1]) : [0, 0, 0, 0];
    const max = layer.getClassName() === 'MaxPooling2D';
    // TF's 'same' average pooling divides by the pixels inside the image only.
    const attrs = { kernel_shape: kernel, strides, pads, ...(max ? {} : { count_include_pad: 0 }) };
    return { name: this.g.node(max ? 'MaxPool' : 'AveragePool', [x.name], `${layer.name}/pool`, attrs), rank: 4 };
  }

  dense(layer: tfl.layers.Layer, x: Value): Value {
    if (x.rank !== 2) throw new Refused(`layer ${layer.name}: dense layer on a ${x.rank}-D tensor`);
    const c = layer.getConfig() as Config;
    const [kernelT, biasT] = layer.getWeights();
    const [din, dout] = kernelT.shape as number[];
    const inputs = [x.name, this.g.constant(`${layer.name}/kernel`, Float32Array.from(kernelT.dataSync()), [din, dout])];
    if (biasT) inputs.push(this.g.constant(`${layer.name}/bias`, Float32Array.from(biasT.dataSync()), [dout]));
    const y = this.g.node('Gemm', inputs, `${layer.name}/gemm`);
    return this.activation({ name: y, rank: 2 }, String(c.activation ?? 'linear'), layer.name);
  }
}

function convertLayer(conv: LayerConverter, g: GraphBuilder, layer: tfl.layers.Layer, ins: Value[], inShapes: number[][]): Value {
  const cls = layer.getClassName();
  const x = ins[0];
  const c = layer.getConfig() as Config;
  switch (cls) {
    case 'Conv2D':
    case 'DepthwiseConv2D':
      return conv.convolution(layer, x, inShapes[0]);
    case 'BatchNormalization':
      return conv.batchNorm(layer, x);
    case 'ReLU': {
      if (c.maxValue === null || c.maxValue === undefined) return conv.activation(x, 'relu', layer.name);
      return conv.clip(x, 0, Number(c.maxValue), layer.name);
    }
    case 'Activation':
      return conv.activation(x, String(c.activation), layer.name);
    case 'Add':
    case 'Multiply': {
      let acc = x.name;
      for (const other of ins.slice(1))
        acc = g.node(cls === 'Add' ? 'Add' : 'Mul', [acc, other.name], `${layer.name}/${cls.toLowerCase()}`);
      return { name: acc, rank: x.rank };
    }
    case 'Concatenate': {
      const axis = Number(c.axis ?? -1);
      if (axis !== -1 && axis !== x.rank - 1) throw new Refused(`layer ${layer.name}: concatenation along axis ${axis}`);
      return {
        name: g.node(
          'Concat',
          ins.map((v) => v.name),
          `${layer.name}/concat`,
          { axis: 1 },
        ),
        rank: x.rank,
      };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      const pooled = g.node(cls === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x.name], `${layer.name}/pool`);
      return { name: g.node('Flatten', [pooled], `${layer.name}/flatten`, { axis: 1 }), rank: 2 };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D':
      return conv.pooling(layer, x, inShapes[0]);
    case 'Dense':
      return conv.dense(layer, x);
    case 'Flatten': {
      if (x.rank === 2) return x;
      // Keras flattens NHWC in (h, w, c) order: back to NHWC before flattening.
      const nhwc = g.node('Transpose', [x.name], `${layer.name}/nhwc`, { perm: [0, 2, 3, 1] });
      return { name: g.node('Flatten', [nhwc], `${layer.name}/flatten`, { axis: 1 }), rank: 2 };
    }
    case 'ZeroPadding2D': {
      const [[t, b], [l, r]] = c.padding as [[number, number], [number, number]];
      const pads = g.constantInt64(`${layer.name}/pads`, [0, 0, t, l, 0, 0, b, r]);
      return { name: g.node('Pad', [x.name, pads], `${layer.name}/pad`, { mode: 'constant' }), rank: 4 };
    }
    case 'Dropout':
    case 'SpatialDropout2D':
    case 'GaussianNoise':
    case 'GaussianDropout':
      return x;
    case 'CoralBias': {
      const bias = layer.getWeights()[0];
      return {
        name: g.node(
          'Add',
          [x.name, g.constant(`${layer.name}/bias`, Float32Array.from(bias.dataSync()), [bias.shape[0]])],
          `${layer.name}/add`,
        ),
        rank: 2,
      };
    }
    default:
      throw new Refused(`layer ${layer.name} (${cls}) has no ONNX conversion in gradelab`);
  }
}

/**
 * Writes a TF.js grading model as ONNX: batch norms folded into the convolutions first, then each layer
 * as ONNX operators in NCHW, with input `image` [N, 3, S, S] (RGB in [0, 1]) and two outputs, the
 * `features` layer and the head's `logits`. Any layer without a conversion is refused with its name.
 */
export function exportOnnx(model: tfl.LayersModel, contract: ModelContract, options: { opset?: number } = {}): Uint8Array {
  const opset = options.opset ?? ONNX_OPSETS.default;
  if (!Number.isInteger(opset) || opset < ONNX_OPSETS.min || opset > ONNX_OPSETS.max)
    throw new ConfigError(`--opset must be an integer from ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max}, got ${opset}`);
  if (model.inputs.length !== 1) throw new ConfigError(`the model has ${model.inputs.length} inputs; gradelab exports single-input models`);
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4 || inShape[3] !== 3 || !inShape[1] || !inShape[2])
    throw new ConfigError(`the model's input is [${inShape.join(', ')}]; gradelab exports models of fixed-size RGB tiles`);
  const both = tfl.model({
    inputs: model.inputs,
    outputs: [model.getLayer('features').getOutputAt(0) as tfl.SymbolicTensor, model.outputs[0]],
  });
  const folded = foldBatchNorm(both);
  try {
    return buildGraph(folded, contract, opset);
  } finally {
    if (folded !== both) folded.dispose();
  }
}

function buildGraph(model: tfl.LayersModel, contract: ModelContract, opset: number): Uint8Array {
  const g = new GraphBuilder();
  const conv = new LayerConverter(g);
  g.fresh(MODEL_INPUT);
  g.fresh(MODEL_FEATURES);
  g.fresh(MODEL_LOGITS);
  const values = new Map<number, Value>([[model.inputs[0].id, { name: MODEL_INPUT, rank: 4 }]]);
  // The model's own graph nodes, inputs first: a folded copy shares layers with the original model, so
  // a layer's inboundNodes also hold nodes of other graphs.
  const byDepth = (model as unknown as { nodesByDepth: Record<string, GraphNode[]> }).nodesByDepth;
  const nodes = Object.keys(byDepth)
    .map(Number)
    .sort((a, b) => b - a)
    .flatMap((d) => byDepth[d]);
  const uses = new Map<string, number>();
  for (const node of nodes) uses.set(node.outboundLayer.name, (uses.get(node.outboundLayer.name) ?? 0) + 1);
  for (const node of nodes) {
    const layer = node.outboundLayer;
    if (layer.getClassName() === 'InputLayer') continue;
    if (uses.get(layer.name)! > 1)
      throw new Refused(`layer ${layer.name} is used in ${uses.get(layer.name)} places; gradelab exports each layer used once`);
    const ins = node.inputTensors.map((t) => values.get(t.id)!);
    const y = convertLayer(
      conv,
      g,
      layer,
      ins,
      node.inputTensors.map((t) => t.shape as number[]),
    );
    values.set(node.outputTensors[0].id, y);
  }
  const [featuresT, logitsT] = model.outputs;
  const features = values.get(featuresT.id)!;
  const logits = values.get(logitsT.id)!;
  if (features.rank !== 2 || logits.rank !== 2) throw new Refused('the features layer and the head must give one vector per tile');
  g.identity(features.name, MODEL_FEATURES);
  g.identity(logits.name, MODEL_LOGITS);
  const size = model.inputs[0].shape[1] as number;
  return encodeModel({
    irVersion: irVersionFor(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'gradelab',
    producerVersion: contract.gradelabVersion,
    docString: `gradelab ${contract.task} grading model (${contract.backbone}, ${contract.head} head): image [N,3,${size},${size}] RGB in [0,1] -> features, logits`,
    graph: {
      name: 'gradelab',
      node: g.nodes,
      initializer: g.initializers,
      input: [floatValueInfo(MODEL_INPUT, ['N', 3, size, size])],
      output: [
        floatValueInfo(MODEL_FEATURES, ['N', featuresT.shape[1] as number]),
        floatValueInfo(MODEL_LOGITS, ['N', logitsT.shape[1] as number]),
      ],
    },
    metadataProps: writeContract(contract),
  });
}
