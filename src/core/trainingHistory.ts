import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic.ts';
import { loadJsonFile } from './validate.ts';
import { MODEL_FILES } from './modelFiles.ts';

/** history.json of a model directory: one entry per epoch, epochs counted from 1 as every log line counts them. */
const entrySchema = z
  .object({
    epoch: z.number().int().min(0),
    trainLoss: z.number().nullable(),
    valQwk: z.number().nullable(),
    valTileQwk: z.number().nullable().optional(),
  })
  .loose();
const historySchema = z.array(entrySchema);

export type HistoryEntry = z.infer<typeof entrySchema>;

export const HISTORY_FILE = MODEL_FILES.history;

/** Writes the epochs of a run (counted from 0 in the loop) with epochs counted from 1; NaN as null. */
export async function writeTrainingHistory(dir: string, epochs: readonly { epoch: number }[]): Promise<void> {
  const entries = epochs.map((e) => ({ ...e, epoch: e.epoch + 1 }));
  await writeFileAtomic(
    join(dir, HISTORY_FILE),
    JSON.stringify(entries, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
}

/** Reads history.json; files from before 0.2 counted epochs from 0 and are shifted to count from 1. */
export function readTrainingHistory(dir: string): HistoryEntry[] {
  const h = loadJsonFile(join(dir, HISTORY_FILE), historySchema, 'training history');
  return h.length && h[0].epoch === 0 ? h.map((e) => ({ ...e, epoch: e.epoch + 1 })) : h;
}
