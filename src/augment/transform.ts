import { z } from 'zod';
import { ConfigError, Registry, zodProblem, type RgbImage, type Rng } from '../core/index.ts';
import { applyFused, type FusedOp } from './fused.ts';

/**
 * A pure image transform: `apply` never mutates its input and takes all randomness from `rng`, so the
 * same seed gives byte-identical output. It is async because the operations libvips does natively
 * (JPEG, resampling, large blurs) run through sharp off the main thread; per-pixel JS transforms
 * resolve at once. Random parameters are drawn before the first await, so results cannot depend on
 * scheduling.
 */
export interface Transform<P = Record<string, unknown>> {
  readonly name: string;
  readonly params: Readonly<P>;
  apply(img: RgbImage, rng: Rng): Promise<RgbImage>;
  /** For fusable transforms: the random parameters drawn as an op (what apply would do), see fused.ts. */
  fusedOp?(rng: Rng): FusedOp;
}

export type TransformKind = 'colour' | 'stain' | 'normalise' | 'morphology' | 'scanner' | 'corruption' | 'artifact';

type Apply = (img: RgbImage, rng: Rng) => RgbImage | Promise<RgbImage>;

/** A registry entry: typed params with defaults (zod), and for corruptions a severity table. */
export interface TransformDef<S extends z.ZodObject = z.ZodObject> {
  name: string;
  kind: TransformKind;
  description: string;
  schema: S;
  /** Parameter values at severity 1..5 (corruptions and artifacts). */
  severities?: Partial<z.infer<S>>[];
  /** Named parameter sets (e.g. hed-jitter light/strong). */
  presets?: Record<string, Partial<z.infer<S>>>;
  make?(params: z.infer<S>): Apply;
  /** Fusable transforms give their drawn op instead of make (apply is then the op on its own). */
  fuse?(params: z.infer<S>): (rng: Rng) => FusedOp;
}

export const transformRegistry = new Registry<TransformDef>('transform');

export function defineTransform<S extends z.ZodObject>(def: TransformDef<S>): TransformDef<S> {
  transformRegistry.register(def.name, def as unknown as TransformDef);
  return def;
}

/** The reserved keys of a pipeline step that are not the transform's own params. */
const STEP_KEYS = new Set(['name', 'p', 'severity', 'preset']);

/**
 * Builds a transform from a spec such as {name: hed-jitter, sigma: 0.05}, {name: jpeg, severity: 3} or
 * {name: hed-jitter, preset: strong}. Unknown names and params, bad values and severities outside 1..5
 * are ConfigErrors naming the transform.
 */
export function transformFromSpec(spec: Record<string, unknown>, where = 'pipeline'): Transform {
  const name = spec.name;
  if (typeof name !== 'string') throw new ConfigError(`${where}: each step needs a transform "name"`);
  if (!transformRegistry.has(name))
    throw new ConfigError(`${where}: unknown transform "${name}"; known: ${transformRegistry.names().join(', ')}`);
  const def = transformRegistry.get(name);
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) if (!STEP_KEYS.has(k)) raw[k] = v;
  let base: Record<string, unknown> = {};
  if (spec.preset !== undefined) {
    const preset = def.presets?.[String(spec.preset)];
    if (!preset)
      throw new ConfigError(
        `${where}: ${name} has no preset "${spec.preset}"${def.presets ? ` (presets: ${Object.keys(def.presets).join(', ')})` : ''}`,
      );
    base = { ...preset };
  }
  if (spec.severity !== undefined) {
    if (!def.severities) throw new ConfigError(`${where}: ${name} has no severity levels`);
    const s = spec.severity;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 5)
      throw new ConfigError(`${where}: ${name} severity must be an integer 1-5, got ${JSON.stringify(s)}`);
    base = { ...base, ...def.severities[s - 1] };
  }
  const parsed = def.schema.strict().safeParse({ ...base, ...raw });
  if (!parsed.success) throw new ConfigError(`${where}: ${name}: ${zodProblem(parsed.error, 'parameter')}`);
  const params = Object.freeze(parsed.data as Record<string, unknown>);
  const fuse = def.fuse?.(params as never);
  if (fuse) {
    return {
      name,
      params,
      async apply(img, rng) {
        return applyFused(img, [fuse(rng)]);
      },
      fusedOp: fuse,
    };
  }
  if (!def.make) throw new Error(`transform ${name} defines neither make nor fuse`);
  const fn = def.make(params as never);
  return {
    name,
    params,
    async apply(img, rng) {
      return fn(img, rng);
    },
  };
}

/** Default params of a transform; params without a default are listed as "required". */
export function defaultsOf(def: TransformDef): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(def.schema.shape)) {
    const r = (field as z.ZodType).safeParse(undefined);
    out[key] = r.success ? (r.data ?? null) : 'required';
  }
  return out;
}

/** Documentation rows for `gradelab augment list` and the README table. */
export function describeTransforms(): {
  name: string;
  kind: TransformKind;
  description: string;
  params: Record<string, unknown>;
  severities?: unknown[];
  presets?: Record<string, unknown>;
}[] {
  return transformRegistry.values().map(([name, def]) => ({
    name,
    kind: def.kind,
    description: def.description,
    params: defaultsOf(def),
    severities: def.severities,
    presets: def.presets,
  }));
}
