import { z } from 'zod';
import { ConfigError, GradelabError, loadYamlFile, type RgbImage, type Rng } from '../core/index.ts';
import { applyFused, type FusedOp } from './fused.ts';
import { transformFromSpec, type Transform } from './transform.ts';
import './colour.ts';
import './macenko.ts';
import './reinhard.ts';
import './morphology.ts';
import './corruptions.ts';
import './artifacts.ts';
import './scanner.ts';

/**
 * A pipeline from a YAML list:
 *   - {name: hflip, p: 0.5}
 *   - {name: hed-jitter, preset: light}
 *   - one-of: [{name: gaussian-blur, sigma: 1}, {name: jpeg, quality: 60}]
 *     p: 0.5
 * Step i draws from rng.fork(i), so adding a step at the end never changes what earlier steps do,
 * and the same seed gives byte-identical output.
 */
export type PipelineSpec = Record<string, unknown>[];

export interface Step {
  p: number;
  choices: Transform[];
  label: string;
}

export class Pipeline {
  constructor(
    readonly steps: readonly Step[],
    readonly spec: PipelineSpec,
  ) {}

  /**
   * Consecutive fusable steps (flips and rotations; stain, brightness, contrast, gamma) run fused, one
   * pass per run instead of one per step, with the same bytes as running them one by one.
   */
  async apply(img: RgbImage, rng: Rng): Promise<RgbImage> {
    let out = img;
    const pending: FusedOp[] = [];
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i];
      const r = rng.fork(`${i}:${step.label}`);
      if (step.p < 1 && r.next() >= step.p) continue;
      const t = step.choices.length === 1 ? step.choices[0] : step.choices[r.int(step.choices.length)];
      const tr = r.fork(t.name);
      if (t.fusedOp) {
        pending.push(t.fusedOp(tr));
        continue;
      }
      if (pending.length) out = applyFused(out, pending.splice(0));
      try {
        out = await t.apply(out, tr);
      } catch (err) {
        // Which step failed, and how: a pipeline of ten steps must not leave the user guessing.
        throw new GradelabError(`augmentation step ${i + 1} (${t.name}) failed: ${(err as Error).message}`, {
          cause: err,
          userError: (err as GradelabError).userError ?? false,
        });
      }
    }
    return pending.length ? applyFused(out, pending) : out;
  }
}

function probability(v: unknown, where: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    throw new ConfigError(`${where}: p must be a number between 0 and 1, got ${JSON.stringify(v)}`);
  return v;
}

export function buildPipeline(spec: unknown, where = 'pipeline'): Pipeline {
  if (spec === null || spec === undefined) return new Pipeline([], []);
  if (!Array.isArray(spec)) throw new ConfigError(`${where}: a pipeline is a list of steps`);
  const steps = spec.map((raw, i): Step => {
    const at = `${where}, step ${i + 1}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new ConfigError(`${at}: each step is a mapping like {name: hflip, p: 0.5}`);
    const s = raw as Record<string, unknown>;
    if ('one-of' in s) {
      const extra = Object.keys(s).filter((k) => k !== 'one-of' && k !== 'p');
      if (extra.length) throw new ConfigError(`${at}: a one-of step takes only "one-of" and "p", not ${extra.join(', ')}`);
      const list = s['one-of'];
      if (!Array.isArray(list) || list.length === 0) throw new ConfigError(`${at}: one-of needs a non-empty list of transforms`);
      const choices = list.map((c, j) => {
        if (!c || typeof c !== 'object') throw new ConfigError(`${at}, choice ${j + 1}: not a mapping`);
        if ('p' in (c as object)) throw new ConfigError(`${at}, choice ${j + 1}: p belongs to the one-of step, not to a choice`);
        return transformFromSpec(c as Record<string, unknown>, `${at}, choice ${j + 1}`);
      });
      return { p: probability(s.p, at), choices, label: `one-of(${choices.map((c) => c.name).join('|')})` };
    }
    const { p, ...rest } = s;
    const t = transformFromSpec(rest, at);
    return { p: probability(p, at), choices: [t], label: t.name };
  });
  return new Pipeline(steps, spec as PipelineSpec);
}

/** Reads a pipeline YAML: a list, or a mapping with a `pipeline:` (or `augment:`) list. */
export function loadPipeline(path: string): Pipeline {
  const { value: doc } = loadYamlFile(path, z.unknown(), 'pipeline file');
  const list = Array.isArray(doc)
    ? doc
    : doc && typeof doc === 'object'
      ? ((doc as Record<string, unknown>).pipeline ?? (doc as Record<string, unknown>).augment)
      : undefined;
  if (!Array.isArray(list)) throw new ConfigError(`${path}: expected a list of steps (or a "pipeline:" list)`);
  return buildPipeline(list, path);
}

/** The loader's hook: worker threads build the pipeline from its spec (see data/loaderTask.ts). */
export function createTileTransform(spec: unknown): (img: RgbImage, rng: Rng) => Promise<RgbImage> {
  const pipeline = buildPipeline(spec);
  return (img, rng) => pipeline.apply(img, rng);
}

/** The standard training pipeline benchmarked in `npm run bench` and used by the shipped configs. */
export const STANDARD_TRAINING_PIPELINE: PipelineSpec = [
  { name: 'hflip', p: 0.5 },
  { name: 'vflip', p: 0.5 },
  { name: 'rot90' },
  { name: 'hed-jitter', preset: 'light' },
  { name: 'brightness', delta: 0.1 },
  { name: 'contrast', factor: 0.1 },
  { name: 'gaussian-blur', sigma: 1, p: 0.5 },
  { name: 'jpeg', quality: 80, p: 0.5 },
];
