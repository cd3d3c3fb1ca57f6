import { z } from 'zod';
import { ConfigError, loadYamlFile } from '../core/index.ts';
import { transformFromSpec } from '../augment/index.ts';

/**
 * A robustness suite: conditions (a transform from the augmentation registry, at listed severities or
 * once), and acceptance criteria agreed in advance, written as
 *   "qwk_drop <= 0.05 for severity <= 3", "ece <= 0.1", "ood_flag_rate <= 0.2 at severity <= 2",
 *   "accuracy >= 0.6 for condition jpeg".
 */
const conditionSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    transform: z.record(z.string(), z.unknown()),
    severities: z.array(z.number().int().min(1).max(5)).optional(),
    description: z.string().optional(),
  })
  .strict();

export const suiteSchema = z
  .object({
    name: z.string(),
    description: z.string().default(''),
    /** Test tiles per slide (evenly spread), to bound the suite's cost. */
    tilesPerSlide: z.number().int().min(1).default(8),
    conditions: z.array(conditionSchema).min(1),
    criteria: z.array(z.string()).default([]),
    /**
     * Below this clean QWK a model has too little to lose for a drop criterion to mean anything (a model
     * that grades every slide alike drops nothing): drop criteria are then not evaluable, and fail.
     * 0.4 is where "moderate" agreement begins (Landis and Koch).
     */
    floor: z
      .object({ qwk: z.number().min(-1).max(1).default(0.4) })
      .strict()
      .default({ qwk: 0.4 }),
  })
  .strict();

export type Suite = z.infer<typeof suiteSchema>;

export const CRITERION_METRICS = ['qwk', 'qwk_drop', 'accuracy', 'accuracy_drop', 'ece', 'ood_flag_rate', 'ce'] as const;
/** Criteria measured against the clean condition: they need a clean model worth degrading. */
export const DROP_METRICS: readonly string[] = ['qwk_drop', 'accuracy_drop', 'ce'];
export type CriterionMetric = (typeof CRITERION_METRICS)[number];

export interface Criterion {
  text: string;
  metric: CriterionMetric;
  op: '<=' | '>=' | '<' | '>';
  value: number;
  severity?: { op: '<=' | '>=' | '<' | '>' | '='; value: number };
  condition?: string;
}

export function parseCriterion(text: string, where: string): Criterion {
  const m =
    /^\s*([a-z_]+)\s*(<=|>=|<|>)\s*(-?[\d.]+)\s*(?:(?:for|at)\s+severity\s*(<=|>=|<|>|=)\s*(\d))?\s*(?:for\s+condition\s+([a-z0-9-]+))?\s*$/.exec(
      text,
    );
  if (!m)
    throw new ConfigError(`${where}: criterion "${text}" is not "<metric> <op> <value> [for severity <op> <n>] [for condition <name>]"`);
  if (!(CRITERION_METRICS as readonly string[]).includes(m[1]))
    throw new ConfigError(`${where}: criterion "${text}": unknown metric "${m[1]}" (known: ${CRITERION_METRICS.join(', ')})`);
  return {
    text: text.trim(),
    metric: m[1] as CriterionMetric,
    op: m[2] as Criterion['op'],
    value: Number(m[3]),
    severity: m[4] ? { op: m[4] as NonNullable<Criterion['severity']>['op'], value: Number(m[5]) } : undefined,
    condition: m[6],
  };
}

export function compare(a: number, op: string, b: number): boolean {
  return op === '<=' ? a <= b : op === '>=' ? a >= b : op === '<' ? a < b : op === '>' ? a > b : a === b;
}

export function loadSuite(path: string): { suite: Suite; criteria: Criterion[] } {
  const suite = loadYamlFile(path, suiteSchema, 'suite file').value;
  const names = new Set<string>();
  for (const c of suite.conditions) {
    if (names.has(c.name)) throw new ConfigError(`${path}: condition "${c.name}" appears twice`);
    names.add(c.name);
    for (const s of c.severities ?? [undefined])
      transformFromSpec({ ...c.transform, ...(s ? { severity: s } : {}) }, `${path}, condition ${c.name}`);
  }
  const criteria = suite.criteria.map((t) => parseCriterion(t, path));
  for (const c of criteria)
    if (c.condition && !names.has(c.condition))
      throw new ConfigError(`${path}: criterion "${c.text}" names unknown condition "${c.condition}"`);
  return { suite, criteria };
}

/** The units of work: one per condition and severity (severity 0 = a condition without levels). */
export function suiteUnits(suite: Suite): { condition: string; severity: number; transform: Record<string, unknown> }[] {
  return suite.conditions.flatMap((c) =>
    (c.severities ?? [0]).map((s) => ({ condition: c.name, severity: s, transform: s ? { ...c.transform, severity: s } : c.transform })),
  );
}
