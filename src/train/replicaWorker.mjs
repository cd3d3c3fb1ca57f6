// Worker-thread entry of a training replica. Plain JavaScript so Node can start it directly; it registers
// tsx and then loads the TypeScript task (no build step). Each message gets one reply: its result, or
// the error's message (with the stack for GRADELAB_LOG=debug).
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { handle } = await import('./replicaTask.ts');

parentPort.on('message', async (message) => {
  try {
    const result = await handle(message);
    parentPort.postMessage({ ok: true, result });
  } catch (err) {
    parentPort.postMessage({
      ok: false,
      error: err instanceof Error ? err.message : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
  }
});
parentPort.postMessage({ ready: true });
