// Worker-thread entry for robustness perturbations. Plain JavaScript so Node can start it directly; it
// registers tsx and then loads the TypeScript task (no build step). The reply is the perturbed pixels
// followed by the elapsed milliseconds as a float64 (see perturber.ts).
import { register } from 'tsx/esm/api';
import { move } from 'piscina';

register();
const { perturbBatch } = await import('./perturbTask.ts');

export default async function run(task) {
  const t0 = performance.now();
  const pixels = await perturbBatch(task);
  const out = new Uint8Array(pixels.length + 8);
  out.set(pixels);
  new DataView(out.buffer, pixels.length, 8).setFloat64(0, performance.now() - t0, true);
  return move(out);
}
