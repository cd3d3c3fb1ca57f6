// Worker-thread entry for the tile loader. Plain JavaScript so Node can start it directly; it registers
// tsx and then loads the TypeScript task, which keeps the loader free of a build step.
import { register } from 'tsx/esm/api';
import { move } from 'piscina';

register();
const { decodeBatch } = await import('./loaderTask.ts');

export default async function run(task) {
  return move(await decodeBatch(task));
}
