// Worker-thread entry of the tile loader (piscina): decodes and augments one batch.
import { move } from 'piscina';
import { isUserError, type GradelabError } from '../core/index.ts';
import { decodeBatch, type BatchTask } from './loaderTask.ts';

/** A user's error, sent back as data: an error object crossing the thread loses its class. */
export interface WorkerUserError {
  userError: string;
  code: string;
}

export default async function run(task: BatchTask): Promise<unknown> {
  try {
    return move(await decodeBatch(task));
  } catch (err) {
    if (isUserError(err)) return { userError: (err as Error).message, code: (err as GradelabError).code } satisfies WorkerUserError;
    throw err;
  }
}
