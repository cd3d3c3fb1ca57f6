// A training replica that fails on purpose: replica 2 throws (GRADELAB_TEST_FAULT=throw) or its thread
// exits (=exit) at step GRADELAB_TEST_FAULT_STEP (default 3); everything else is the real replica task.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { handle } = await import('../../src/train/replicaTask.ts');
const mode = process.env.GRADELAB_TEST_FAULT;
let index = -1;
let steps = 0;

parentPort.on('message', async (message) => {
  if (message.type === 'init') index = message.index;
  if (message.type === 'step' && index === 1 && ++steps === Number(process.env.GRADELAB_TEST_FAULT_STEP ?? 3)) {
    if (mode === 'exit') process.exit(7);
    parentPort.postMessage({ ok: false, error: 'injected fault: wasm memory exhausted\n    at step (replica)' });
    return;
  }
  try {
    parentPort.postMessage({ ok: true, result: await handle(message) });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: err.message });
  }
});
parentPort.postMessage({ ready: true });
