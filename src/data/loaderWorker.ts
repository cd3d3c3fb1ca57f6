// Worker-thread entry of the tile loader (piscina): decodes and augments one batch.
import { move } from 'piscina';
import { decodeBatch, type BatchTask } from './loaderTask.ts';

export default async function run(task: BatchTask): Promise<unknown> {
  return move(await decodeBatch(task));
}
