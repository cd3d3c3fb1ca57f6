export {
  onnx,
  decodeModel,
  readModel,
  encodeModel,
  toNumber,
  type ModelProto,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.ts';
export { GraphBuilder, floatTensor, floatValueInfo, int64Tensor, type AttributeValue } from './graph.ts';
export {
  MODEL_INPUT,
  MODEL_FEATURES,
  MODEL_LOGITS,
  contractOf,
  type ModelContract,
  writeContract,
  readContract,
  withContract,
} from './contract.ts';
