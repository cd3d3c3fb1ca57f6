// Worker-thread entry for robustness perturbations (piscina). The reply is the perturbed pixels followed
// by the elapsed milliseconds as a float64 (see perturber.ts).
import { move } from 'piscina';
import { perturbBatch, type PerturbTask } from './perturbTask.ts';

export default async function run(task: PerturbTask): Promise<unknown> {
  const t0 = performance.now();
  const pixels = await perturbBatch(task);
  const out = new Uint8Array(pixels.length + 8);
  out.set(pixels);
  new DataView(out.buffer, pixels.length, 8).setFloat64(0, performance.now() - t0, true);
  return move(out);
}
