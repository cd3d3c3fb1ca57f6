import { openModel, registerTfjsEngine } from '../engine/index.ts';

// The one place that ties train's TensorFlow.js predictor to the engine: imported lazily, so a model
// with model.onnx never loads TensorFlow.js.
registerTfjsEngine(async (dir, options) => {
  const train = await import('../train/index.ts');
  await train.selectBackend((options.backend ?? 'auto') as 'auto');
  return train.TfjsPredictor.load(dir);
});

/**
 * Opens a model directory for inference with every engine registered: model.onnx through ONNX Runtime
 * where the directory has one, TensorFlow.js otherwise (see engine's openModel for the rules).
 */
export { openModel };
