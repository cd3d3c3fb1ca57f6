// Worker-thread entry of a training replica. Each message gets one reply: its result, or the error's
// message (with the stack for GRADELAB_LOG=debug).
import { parentPort } from 'node:worker_threads';
import { handle, type ReplicaMessage } from './replicaTask.ts';

const port = parentPort!;
port.on('message', async (message: ReplicaMessage) => {
  try {
    const result = await handle(message);
    port.postMessage({ ok: true, result });
  } catch (err) {
    port.postMessage({
      ok: false,
      error: err instanceof Error ? err.message : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
  }
});
port.postMessage({ ready: true });
