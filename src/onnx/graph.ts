import { onnx, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';

export type AttributeValue = number | number[] | string | { ints: number[] } | { float: number };

/** A float32 tensor value_info: dims as numbers (fixed) or strings (symbolic, e.g. the batch). */
export function floatValueInfo(name: string, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function floatTensor(name: string, data: Float32Array, dims: number[]): TensorProto {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
  return {
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  };
}

export function int64Tensor(name: string, values: number[]): TensorProto {
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: values };
}

function attribute(name: string, value: AttributeValue) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.INTS, ints: value.ints };
}

/**
 * Builds an ONNX graph node by node. Names are made unique by the builder (`fresh`), so converters can
 * name values after the layers they come from without colliding.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();

  constructor(existing?: GraphProto) {
    if (!existing) return;
    for (const n of existing.node ?? []) for (const o of n.output ?? []) this.used.add(o);
    for (const i of existing.initializer ?? []) this.used.add(i.name ?? '');
    for (const i of existing.input ?? []) this.used.add(i.name ?? '');
  }

  fresh(base: string): string {
    const clean = base.replace(/[^\w./-]/g, '_');
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  constant(base: string, data: Float32Array, dims: number[]): string {
    const name = this.fresh(base);
    this.initializers.push(floatTensor(name, data, dims));
    return name;
  }

  constantInt64(base: string, values: number[]): string {
    const name = this.fresh(base);
    this.initializers.push(int64Tensor(name, values));
    return name;
  }

  /** Adds a node with one output and returns that output's name. */
  node(op: string, inputs: string[], base: string, attributes: Record<string, AttributeValue> = {}): string {
    const out = this.fresh(base);
    this.nodes.push({
      opType: op,
      input: inputs,
      output: [out],
      name: out,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Renames the value `from` to `to` by an Identity, so graph outputs carry stable names. */
  identity(from: string, to: string): string {
    this.used.add(to);
    this.nodes.push({ opType: 'Identity', input: [from], output: [to], name: to });
    return to;
  }
}
