export { openModel, registerTfjsEngine, ENGINES, type EngineName, type ModelOpenOptions, type TfjsOpener } from './select.ts';
export { OnnxPredictor, MODEL_ONNX, splitBatch, concatOutputs } from './onnxPredictor.ts';
export { OnnxEncoder, checkRegistryEncoder, type EncoderShape } from './encoder.ts';
export { composeEncoderHead } from './compose.ts';
export { openSession, resolveThreads, type Device, type EngineOptions } from './session.ts';
export { prepareInput, type InputLayout } from './preprocess.ts';
export { ImportedFeaturesHead } from './importedHead.ts';
