import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic.ts';
import { loadJsonFile } from './validate.ts';

/**
 * A head as one affine map of the features, logits = features W + b with W [d, L] row-major: what a
 * softmax, CORAL (one projection repeated over the K-1 thresholds, plus their biases) or multitask head
 * trained on frozen-encoder embeddings reduces to. Stored as head.json in the model directory.
 */
export interface AffineHead {
  dim: number;
  outputs: number;
  weights: Float32Array;
  bias: Float32Array;
}

const headSchema = z
  .object({
    format: z.literal('gradelab-head/1'),
    dim: z.number().int().positive(),
    outputs: z.number().int().positive(),
    weights: z.array(z.number()),
    bias: z.array(z.number()),
  })
  .refine((h) => h.weights.length === h.dim * h.outputs && h.bias.length === h.outputs, {
    message: 'weights must be dim x outputs and bias outputs long',
  });

export const AFFINE_HEAD_FILE = 'head.json';

export async function writeAffineHead(dir: string, head: AffineHead): Promise<void> {
  await writeFileAtomic(
    join(dir, AFFINE_HEAD_FILE),
    JSON.stringify({
      format: 'gradelab-head/1',
      dim: head.dim,
      outputs: head.outputs,
      weights: Array.from(head.weights),
      bias: Array.from(head.bias),
    }),
  );
}

export function readAffineHead(dir: string): AffineHead {
  const h = loadJsonFile(join(dir, AFFINE_HEAD_FILE), headSchema, 'head weights');
  return { dim: h.dim, outputs: h.outputs, weights: Float32Array.from(h.weights), bias: Float32Array.from(h.bias) };
}

/** n x L logits of n feature vectors. */
export function applyAffineHead(head: AffineHead, features: Float32Array, n: number): Float32Array {
  const { dim: d, outputs: l, weights: w, bias: b } = head;
  const out = new Float32Array(n * l);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < l; o++) {
      let s = b[o];
      for (let j = 0; j < d; j++) s += features[i * d + j] * w[j * l + o];
      out[i * l + o] = s;
    }
  }
  return out;
}
