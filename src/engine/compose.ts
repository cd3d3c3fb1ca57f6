import { InputError, type AffineHead, type EncoderSpec } from '../core/index.ts';
import {
  encodeModel,
  floatValueInfo,
  GraphBuilder,
  MODEL_FEATURES,
  MODEL_INPUT,
  MODEL_LOGITS,
  readModel,
  writeContract,
  type GraphProto,
  type ModelContract,
} from '../onnx/index.ts';
import type { EncoderShape } from './encoder.ts';

/** Renames a value everywhere in a graph (nodes, initialisers, inputs, outputs, value infos). */
function renameValue(graph: GraphProto, from: string, to: string): void {
  const swap = (n: string) => (n === from ? to : n);
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map(swap);
    node.output = (node.output ?? []).map(swap);
  }
  for (const list of [graph.initializer, graph.input, graph.output, graph.valueInfo])
    for (const v of list ?? []) if (v.name === from) v.name = to;
}

/**
 * One model.onnx from a frozen encoder and a head trained on its embeddings, keeping gradelab's model
 * contract: input `image` [N, 3, S, S] RGB in [0, 1]; the encoder's normalisation ((x - mean) / std, and
 * a transpose for NHWC encoders) inside the graph; outputs `features` (the embedding) and `logits`. The
 * encoder's nodes, weights, opsets and metadata are kept as they are.
 */
export function composeEncoderHead(
  encoderPath: string,
  shape: EncoderShape,
  spec: EncoderSpec,
  head: AffineHead,
  contract: ModelContract,
): Uint8Array {
  const model = readModel(encoderPath);
  const graph = model.graph!;
  if (head.weights.length !== shape.dim * head.outputs)
    throw new InputError(`head of ${head.weights.length / head.outputs} features does not fit the encoder's ${shape.dim}`);
  for (const name of [MODEL_INPUT, MODEL_FEATURES, MODEL_LOGITS]) renameValue(graph, name, `encoder/${name}`);
  const encoderInput = shape.input === MODEL_INPUT ? `encoder/${MODEL_INPUT}` : shape.input;
  const encoderOutput = [MODEL_FEATURES, MODEL_LOGITS, MODEL_INPUT].includes(shape.output) ? `encoder/${shape.output}` : shape.output;

  const pre = new GraphBuilder(graph);
  const size = spec.inputSize;
  const mean = pre.constant('normalise/mean', Float32Array.from(spec.mean), [1, 3, 1, 1]);
  const std = pre.constant('normalise/std', Float32Array.from(spec.std), [1, 3, 1, 1]);
  pre.fresh(MODEL_INPUT);
  let x = pre.node('Div', [pre.node('Sub', [MODEL_INPUT, mean], 'normalise/centred'), std], 'normalise/scaled');
  if (shape.layout.layout === 'NHWC') x = pre.node('Transpose', [x], 'normalise/nhwc', { perm: [0, 2, 3, 1] });
  pre.identity(x, encoderInput);

  const post = new GraphBuilder({
    ...graph,
    node: [...(graph.node ?? []), ...pre.nodes],
    initializer: [...(graph.initializer ?? []), ...pre.initializers],
  });
  const w = post.constant('head/weights', head.weights, [shape.dim, head.outputs]);
  const b = post.constant('head/bias', head.bias, [head.outputs]);
  post.identity(post.node('Gemm', [encoderOutput, w, b], 'head/gemm'), MODEL_LOGITS);
  post.identity(encoderOutput, MODEL_FEATURES);

  const initializerNames = new Set((graph.initializer ?? []).map((i) => i.name));
  return encodeModel({
    ...model,
    producerName: 'gradelab',
    producerVersion: contract.gradelabVersion,
    docString: `gradelab ${contract.task} grading head on the frozen encoder ${contract.backbone}: image [N,3,${size},${size}] RGB in [0,1] -> features, logits`,
    graph: {
      ...graph,
      node: [...pre.nodes, ...(graph.node ?? []), ...post.nodes],
      initializer: [...(graph.initializer ?? []), ...pre.initializers, ...post.initializers],
      // Old IR versions list initialisers among the inputs too; those stay.
      input: [floatValueInfo(MODEL_INPUT, ['N', 3, size, size]), ...(graph.input ?? []).filter((i) => initializerNames.has(i.name))],
      output: [floatValueInfo(MODEL_FEATURES, ['N', shape.dim]), floatValueInfo(MODEL_LOGITS, ['N', head.outputs])],
    },
    metadataProps: [...(model.metadataProps ?? []).filter((p) => !p.key?.startsWith('gradelab.')), ...writeContract(contract)],
  });
}
