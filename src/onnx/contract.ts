import { closeSync, openSync, readSync } from 'node:fs';
import protobuf from 'protobufjs/minimal.js';
import { z } from 'zod';
import { GRADELAB_VERSION, InputError, zodProblem, type ModelMeta } from '../core/index.ts';
import { decodeModel, encodeModel, onnx } from './proto.ts';

/**
 * What every model.onnx that gradelab writes promises, so it runs unchanged outside gradelab:
 * input `image`, float32 [N, 3, S, S], RGB in [0, 1] (any normalisation the backbone needs is inside
 * the graph); outputs `features` [N, d] (the penultimate layer) and `logits` [N, L] (the head's raw
 * outputs: softmax logits, CORAL's K-1 threshold logits, or the breast multitask's 4 x 3).
 */
export const MODEL_INPUT = 'image';
export const MODEL_FEATURES = 'features';
export const MODEL_LOGITS = 'logits';

const contractSchema = z.object({
  task: z.enum(['prostate', 'breast']),
  head: z.enum(['softmax', 'ordinal', 'multitask', 'patterns']),
  classes: z.array(z.number().int()).min(2),
  inputSize: z.number().int().positive(),
  tileSize: z.number().int().positive(),
  mpp: z.number().positive(),
  backbone: z.string(),
  /** How pixels reach the backbone: mean and std applied inside the graph to [0, 1] RGB. */
  normalisation: z.object({ mean: z.array(z.number()).length(3), std: z.array(z.number()).length(3) }),
  /** SHA-256 of the weights the graph was made from (the TF.js weights.bin, or the head for frozen encoders). */
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  gradelabVersion: z.string(),
  /** Temperature scaling (gradelab calibrate): divide `logits` by it before the head's probabilities. */
  temperature: z.number().positive().optional(),
});

export type ModelContract = z.infer<typeof contractSchema>;

const PREFIX = 'gradelab.';

/** The contract of a model directory's model.onnx, from its gradelab.json. */
export function contractOf(meta: ModelMeta): ModelContract {
  if (!meta.weightsSha256) throw new InputError(`model ${meta.backbone}: gradelab.json records no weights SHA-256; retrain or re-export`);
  return contractSchema.parse({
    task: meta.task,
    head: meta.head,
    classes: meta.classes,
    inputSize: meta.inputSize,
    tileSize: meta.tileSize,
    mpp: meta.mpp,
    backbone: meta.backbone,
    normalisation: meta.encoder ? { mean: meta.encoder.mean, std: meta.encoder.std } : { mean: [0, 0, 0], std: [1, 1, 1] },
    weightsSha256: meta.weightsSha256,
    gradelabVersion: GRADELAB_VERSION,
    ...(meta.calibration?.method === 'temperature' ? { temperature: meta.calibration.temperature } : {}),
  });
}

/** A model file with its gradelab metadata replaced by `contract` (graph, weights and other metadata kept). */
export function withContract(bytes: Uint8Array, contract: ModelContract, where: string): Uint8Array {
  const model = decodeModel(bytes, where);
  return encodeModel({
    ...model,
    metadataProps: [...(model.metadataProps ?? []).filter((p) => !p.key?.startsWith(PREFIX)), ...writeContract(contract)],
  });
}

/** The contract as ONNX metadata_props (string values; arrays and objects as JSON). */
export function writeContract(c: ModelContract): { key: string; value: string }[] {
  return Object.entries(contractSchema.parse(c)).map(([k, v]) => ({
    key: `${PREFIX}${k}`,
    value: typeof v === 'string' ? v : JSON.stringify(v),
  }));
}

/**
 * Reads a model file's gradelab contract from its metadata_props without decoding the graph: the
 * top-level ModelProto fields are walked and the graph (field 7, nearly all of a large file) is skipped,
 * so a 1 GB encoder costs a few reads, not a full protobuf decode.
 */
export function readContract(path: string): ModelContract | undefined {
  const props = readMetadataProps(path);
  const entries = Object.entries(props).filter(([k]) => k.startsWith(PREFIX));
  if (!entries.length) return undefined;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const key = k.slice(PREFIX.length);
    try {
      raw[key] = ['task', 'head', 'backbone', 'weightsSha256', 'gradelabVersion'].includes(key) ? v : JSON.parse(v);
    } catch {
      raw[key] = v;
    }
  }
  const r = contractSchema.safeParse(raw);
  if (!r.success) throw new InputError(`${path}: gradelab metadata is invalid: ${zodProblem(r.error)}`);
  return r.data;
}

const GRAPH_FIELD = 7;
const METADATA_FIELD = 14;

function readMetadataProps(path: string): Record<string, string> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new InputError(`${path}: ONNX file not found`);
  }
  const out: Record<string, string> = {};
  try {
    let pos = 0;
    const head = Buffer.alloc(16);
    for (;;) {
      const got = readSync(fd, head, 0, head.length, pos);
      if (got === 0) break;
      const r = protobuf.Reader.create(head.subarray(0, got));
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 0) throw new InputError(`${path}: not an ONNX model (bad protobuf field at byte ${pos})`);
      if (wire === 0) {
        r.uint64();
        pos += r.pos;
      } else if (wire === 2) {
        const len = r.uint32();
        const start = pos + r.pos;
        if (field === METADATA_FIELD) {
          const body = Buffer.alloc(len);
          if (readSync(fd, body, 0, len, start) !== len) throw new InputError(`${path}: truncated ONNX file`);
          const e = onnx.StringStringEntryProto.decode(body);
          out[e.key] = e.value;
        } else if (field !== GRAPH_FIELD && len > 1 << 30) {
          throw new InputError(`${path}: not an ONNX model (field ${field} claims ${len} bytes)`);
        }
        pos = start + len;
      } else if (wire === 5) pos += r.pos + 4;
      else if (wire === 1) pos += r.pos + 8;
      else throw new InputError(`${path}: not an ONNX model (protobuf wire type ${wire} at byte ${pos})`);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: not an ONNX model (${(err as Error).message})`, { cause: err });
  } finally {
    closeSync(fd);
  }
  return out;
}
