import { readFileSync, statSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { InputError } from '../core/index.ts';

/** ONNX's protobuf schema (onnx-proto, on protobufjs): the only way gradelab reads or writes .onnx files. */
export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** protobufjs decodes int64 as Long where the `long` package is present, as number otherwise. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Protobuf's hard limit: a single message (and so a single-file ONNX model) stays under 2 GB. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

export function decodeModel(bytes: Uint8Array, where: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InputError(`${where}: not an ONNX model (protobuf decoding failed: ${(err as Error).message.split('\n')[0]})`, {
      cause: err,
    });
  }
  if (!model.graph || !model.graph.node?.length) throw new InputError(`${where}: not an ONNX model (no graph)`);
  return model;
}

/** Reads and decodes a whole .onnx file; one line naming the file when it is not one. */
export function readModel(path: string): ModelProto {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new InputError(`${path}: ONNX file not found`);
  }
  if (size > MAX_PROTO_BYTES)
    throw new InputError(
      `${path}: ${(size / 2 ** 30).toFixed(1)} GB is over protobuf's 2 GB limit; export the encoder with its weights as external data is not supported yet`,
    );
  return decodeModel(readFileSync(path), path);
}

export function encodeModel(model: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
