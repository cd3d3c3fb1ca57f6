import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { groupBy } from '../core/index.ts';

/**
 * An inference copy of a model with every convolution -> batch norm (-> ReLU) chain folded into one
 * convolution with bias and fused activation: W' = W s, b' = (b - mean) s + beta, s = gamma /
 * sqrt(var + eps) per output channel. On wasm a batch norm and a ReLU are each a full pass over the
 * activations (a quarter of a ResNet's inference time), while XNNPACK adds bias and clamps inside the
 * convolution. Layers that are not folded are shared with the original, so the copy costs only the
 * folded kernels; it must not be trained (its batch norms are gone).
 */
export function foldBatchNorm(model: tfl.LayersModel): tfl.LayersModel {
  const edges = model.layers.flatMap((layer) =>
    layer.inboundNodes.flatMap((node) => node.inboundLayers.map((inbound) => ({ from: inbound.name, layer }))),
  );
  const consumersOf = groupBy(
    edges,
    (e) => e.from,
    (e) => e.layer,
  );
  const outputs = new Set(model.outputLayers.map((l) => l.name));
  // The single consumer of a layer used once, whose output is not a model output.
  const soleConsumer = (l: tfl.layers.Layer) => {
    const next = consumersOf.get(l.name) ?? [];
    return l.inboundNodes.length === 1 && next.length === 1 && !outputs.has(l.name) && next[0].inboundNodes.length === 1
      ? next[0]
      : undefined;
  };

  // Which batch norms (and ReLUs after them) fold into which convolution, with which activation.
  type Fold = { conv: tfl.layers.Layer; bn: tfl.layers.Layer; relu?: tfl.layers.Layer; activation: 'linear' | 'relu' | 'relu6' };
  const foldInto = new Map<string, Fold>();
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') continue;
    if ((layer.getConfig() as { activation: string }).activation !== 'linear') continue;
    const bn = soleConsumer(layer);
    if (!bn || bn.getClassName() !== 'BatchNormalization') continue;
    const axes = [(bn.getConfig() as { axis: number | number[] }).axis].flat();
    if (axes.length !== 1 || (axes[0] !== -1 && axes[0] !== 3)) continue;
    const next = soleConsumer(bn);
    const maxValue = next?.getClassName() === 'ReLU' ? ((next.getConfig() as { maxValue?: number | null }).maxValue ?? null) : undefined;
    const relu = maxValue === null || maxValue === 6 ? next : undefined;
    foldInto.set(layer.name, { conv: layer, bn, relu, activation: !relu ? 'linear' : maxValue === 6 ? 'relu6' : 'relu' });
  }
  if (!foldInto.size) return model;

  const skipped = new Set<string>();
  for (const f of foldInto.values()) {
    skipped.add(f.bn.name);
    if (f.relu) skipped.add(f.relu.name);
  }
  // Rebuild the graph layer by layer (model.layers is in topological order).
  const mapped = new Map<number, tfl.SymbolicTensor>();
  const inputs = model.inputs.map((t) => {
    const input = tfl.input({ shape: t.shape.slice(1), dtype: t.dtype, name: `${t.name.replace(/[^\w]/g, '_')}_folded` });
    mapped.set(t.id, input);
    return input;
  });
  const newWeights: [tfl.layers.Layer, tf.Tensor[]][] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const node = layer.inboundNodes[0];
    const ins = node.inputTensors.map((t) => mapped.get(t.id)!);
    const outs = node.outputTensors;
    if (skipped.has(layer.name)) {
      mapped.set(outs[0].id, ins[0]);
      continue;
    }
    const f = foldInto.get(layer.name);
    if (!f) {
      const y = layer.apply(ins.length === 1 ? ins[0] : ins) as tfl.SymbolicTensor | tfl.SymbolicTensor[];
      (Array.isArray(y) ? y : [y]).forEach((t, i) => mapped.set(outs[i].id, t));
      continue;
    }
    const c = f.conv.getConfig() as Record<string, unknown>;
    const common = {
      kernelSize: c.kernelSize as [number, number],
      strides: c.strides as [number, number],
      padding: c.padding as 'same',
      dilationRate: c.dilationRate as [number, number],
      useBias: true,
      activation: f.activation as 'relu',
      name: `${f.conv.name}_folded`,
      trainable: false,
    };
    const folded =
      f.conv.getClassName() === 'Conv2D'
        ? tfl.layers.conv2d({ ...common, filters: c.filters as number })
        : tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: c.depthMultiplier as number });
    // The batch norm and ReLU after it pass this output on as they are skipped.
    mapped.set(outs[0].id, folded.apply(ins[0]) as tfl.SymbolicTensor);
    newWeights.push([folded, foldedWeights(f.conv, f.bn)]);
  }
  const folded = tfl.model({ inputs, outputs: model.outputs.map((t) => mapped.get(t.id)!), name: `${model.name}_folded` });
  for (const [layer, weights] of newWeights) {
    layer.setWeights(weights);
    tf.dispose(weights);
  }
  return folded;
}

/** W s and (b - mean) s + beta for a convolution and the batch norm after it. */
function foldedWeights(conv: tfl.layers.Layer, bn: tfl.layers.Layer): tf.Tensor[] {
  return tf.tidy(() => {
    const convW = conv.getWeights();
    const kernel = convW[0];
    const bias = convW[1];
    const bnConfig = bn.getConfig() as { center: boolean; scale: boolean; epsilon: number };
    const w = bn.getWeights();
    let i = 0;
    const gamma = bnConfig.scale ? w[i++] : undefined;
    const beta = bnConfig.center ? w[i++] : undefined;
    const mean = w[i++];
    const variance = w[i++];
    let s = tf.rsqrt(tf.add(variance, bnConfig.epsilon));
    if (gamma) s = tf.mul(s, gamma);
    // Conv2D kernels are [kh, kw, ci, co]; depthwise [kh, kw, c, m] with output channel c m + j.
    const perOutput = conv.getClassName() === 'Conv2D' ? s : tf.reshape(s, [kernel.shape[2]!, kernel.shape[3]!]);
    const newKernel = tf.mul(kernel, perOutput);
    let newBias = tf.mul(bias ? tf.sub(bias, mean) : tf.neg(mean), s);
    if (beta) newBias = tf.add(newBias, beta);
    return [newKernel, newBias];
  });
}
