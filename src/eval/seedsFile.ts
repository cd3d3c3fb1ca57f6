import { z } from 'zod';
import { loadJsonFile, modelFile } from '../core/index.ts';
import { estimateJson } from './fileContracts.ts';

const spread = z.object({ mean: z.number(), sd: z.number(), min: z.number(), max: z.number(), ci95: z.tuple([z.number(), z.number()]) });

/** seeds.json in a model folder: a head trained with several seeds (gradelab train --seeds N). */
export const seedsFileSchema = z
  .object({
    format: z.literal('gradelab-seeds/1'),
    seeds: z.number().int(),
    runs: z.array(z.object({ seed: z.number(), bestEpoch: z.number(), valQwk: z.number().nullable(), testQwk: z.number().nullable() })),
    val: spread,
    test: spread.nullable(),
    testSlides: z.number(),
    firstSeedTestBootstrap: estimateJson.nullable(),
  })
  .loose();
export type SeedsFile = z.infer<typeof seedsFileSchema>;

export const readSeedsFile = (modelDir: string): SeedsFile =>
  loadJsonFile(modelFile(modelDir, 'seeds'), seedsFileSchema, 'seed spread (gradelab train --seeds)');
