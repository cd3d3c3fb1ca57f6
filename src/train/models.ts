import * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError, Registry } from '../core/index.ts';

export interface BackboneOptions {
  inputSize: number;
  /** Channel width multiplier (ResNet: base channels = 16 x width). */
  width: number;
  seed: number;
}

export interface BackboneDef {
  name: string;
  description: string;
  /** Builds input -> features (global-average-pooled, named "features"). */
  build(input: tfl.SymbolicTensor, options: BackboneOptions): tfl.SymbolicTensor;
}

export const modelRegistry = new Registry<BackboneDef>('model');

/** Seeded initialisers: the same seed gives the same starting weights. */
class Seeds {
  private n: number;
  constructor(seed: number) {
    this.n = seed * 1000;
  }
  he() {
    return tfl.initializers.heNormal({ seed: this.n++ });
  }
  glorot() {
    return tfl.initializers.glorotUniform({ seed: this.n++ });
  }
}

function convBn(
  x: tfl.SymbolicTensor,
  filters: number,
  kernel: number,
  stride: number,
  seeds: Seeds,
  name: string,
  relu = true,
): tfl.SymbolicTensor {
  let y = tfl.layers
    .conv2d({
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: 'same',
      useBias: false,
      kernelInitializer: seeds.he(),
      name: `${name}_conv`,
    })
    .apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ momentum: 0.9, name: `${name}_bn` }).apply(y) as tfl.SymbolicTensor;
  return relu ? (tfl.layers.reLU({ name: `${name}_relu` }).apply(y) as tfl.SymbolicTensor) : y;
}

/**
 * A compact ResNet (He et al. 2016, basic blocks): a stride-2 stem, four stages of one basic block each
 * at 16w, 32w, 64w, 128w channels (stride 2 from stage 2, 1x1 projection shortcuts), global average pool.
 */
modelRegistry.register('resnet', {
  name: 'resnet',
  description: 'compact ResNet: stem + 4 stages of basic blocks (16w, 32w, 64w, 128w channels), GAP',
  build(input, { width, seed }) {
    const seeds = new Seeds(seed);
    const ch = [16, 32, 64, 128].map((c) => Math.max(8, Math.round(c * width)));
    let x = convBn(input, ch[0], 3, 2, seeds, 'stem');
    ch.forEach((c, i) => {
      const stride = i === 0 ? 1 : 2;
      const name = `stage${i + 1}`;
      let y = convBn(x, c, 3, stride, seeds, `${name}_a`);
      y = convBn(y, c, 3, 1, seeds, `${name}_b`, false);
      const shortcut = stride !== 1 || (x.shape[3] as number) !== c ? convBn(x, c, 1, stride, seeds, `${name}_proj`, false) : x;
      x = tfl.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tfl.SymbolicTensor;
      x = tfl.layers.reLU({ name: `${name}_out` }).apply(x) as tfl.SymbolicTensor;
    });
    return tfl.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tfl.SymbolicTensor;
  },
});

/**
 * A MobileNetV2-style network (Sandler et al. 2018): inverted residual blocks (1x1 expand x6, 3x3
 * depthwise, 1x1 linear projection), residual when shapes match; width multiplier on all channels.
 */
modelRegistry.register('mobilenetv2', {
  name: 'mobilenetv2',
  description: 'MobileNetV2-style inverted residuals (expansion 6, depthwise 3x3), width multiplier, GAP',
  build(input, { width, seed }) {
    const seeds = new Seeds(seed);
    const c = (n: number) => Math.max(8, Math.round((n * width) / 8) * 8);
    let x = convBn(input, c(32), 3, 2, seeds, 'stem');
    // (expansion, channels, repeats, stride): a shortened MobileNetV2 schedule for small tiles.
    const schedule: [number, number, number, number][] = [
      [1, 16, 1, 1],
      [6, 24, 2, 2],
      [6, 32, 2, 2],
      [6, 64, 2, 2],
      [6, 96, 1, 1],
    ];
    let block = 0;
    for (const [t, ch, n, s] of schedule) {
      for (let i = 0; i < n; i++) {
        const stride = i === 0 ? s : 1;
        const inC = x.shape[3] as number;
        const name = `block${block++}`;
        let y = t === 1 ? x : convBn(x, inC * t, 1, 1, seeds, `${name}_expand`);
        y = tfl.layers
          .depthwiseConv2d({
            kernelSize: 3,
            strides: stride,
            padding: 'same',
            useBias: false,
            depthwiseInitializer: seeds.he(),
            name: `${name}_dw`,
          })
          .apply(y) as tfl.SymbolicTensor;
        y = tfl.layers.batchNormalization({ momentum: 0.9, name: `${name}_dw_bn` }).apply(y) as tfl.SymbolicTensor;
        y = tfl.layers.reLU({ maxValue: 6, name: `${name}_dw_relu` }).apply(y) as tfl.SymbolicTensor;
        y = convBn(y, c(ch), 1, 1, seeds, `${name}_project`, false);
        x = stride === 1 && inC === c(ch) ? (tfl.layers.add({ name: `${name}_add` }).apply([x, y]) as tfl.SymbolicTensor) : y;
      }
    }
    x = convBn(x, c(320), 1, 1, seeds, 'top');
    return tfl.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tfl.SymbolicTensor;
  },
});

/**
 * A plain VGG-style network (Simonyan & Zisserman 2015) without batch norm: per stage a stride-2 3x3
 * convolution and a 3x3 convolution, with biases and ReLU, at 16w, 32w, 64w, 128w channels, then GAP.
 * With no batch statistics, its training is the same for any number of replicas (within rounding).
 */
modelRegistry.register('plain', {
  name: 'plain',
  description: 'plain VGG-style CNN without batch norm: 4 stages of two 3x3 conv + ReLU (16w..128w), GAP',
  build(input, { width, seed }) {
    const seeds = new Seeds(seed);
    const ch = [16, 32, 64, 128].map((c) => Math.max(8, Math.round(c * width)));
    let x = input;
    ch.forEach((c, i) => {
      for (const [j, stride] of [
        [0, 2],
        [1, 1],
      ] as const) {
        x = tfl.layers
          .conv2d({
            filters: c,
            kernelSize: 3,
            strides: stride,
            padding: 'same',
            activation: 'relu',
            kernelInitializer: seeds.he(),
            name: `stage${i + 1}_conv${j + 1}`,
          })
          .apply(x) as tfl.SymbolicTensor;
      }
    });
    return tfl.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tfl.SymbolicTensor;
  },
});

export function backbone(name: string): BackboneDef {
  if (!modelRegistry.has(name)) throw new ConfigError(`unknown model "${name}"; known: ${modelRegistry.names().join(', ')}`);
  return modelRegistry.get(name);
}
