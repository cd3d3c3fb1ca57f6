import { ConfigError } from '../core/index.ts';
import type { PredictionRow } from './predictions.ts';

/**
 * Which slides the headline grading performance is about. Out of scope by reference: slides whose
 * tissue is not what the model grades (the `anomaly` column: lymphoid, mucinous, pen marks, other
 * tissue...). Out of scope by the device: slides its OOD detector flags, which the intended use refers
 * to a pathologist instead of grading. Each is reported apart, never averaged in.
 */
export const EXCLUSIONS = ['anomalous', 'ood-flagged'] as const;
export type Exclusion = (typeof EXCLUSIONS)[number];

/** The headline set of gradelab eval and metrics: slides in scope by the reference and accepted by the model. */
export const DEFAULT_EXCLUSIONS: readonly Exclusion[] = ['anomalous', 'ood-flagged'];

export interface ExcludedSlide {
  slideId: string;
  patientId: string;
  reason: Exclusion;
  /** The anomaly named by the reference, for anomalous slides. */
  detail?: string;
  label?: number;
  pred: number;
}

export interface EvaluationSet {
  /** The rule, in words, as the report prints it. */
  rule: string;
  exclude: Exclusion[];
  /** The labelled slides the metrics are computed on, and their patients. */
  slides: string[];
  patients: number;
  excluded: ExcludedSlide[];
}

export function parseExclusions(text: string | readonly string[] | undefined, where = '--exclude'): Exclusion[] {
  if (text === undefined) return [...DEFAULT_EXCLUSIONS];
  const items = (Array.isArray(text) ? text : String(text ?? '').split(',')).map((s) => String(s).trim()).filter(Boolean);
  if (items.length === 1 && items[0] === 'none') return [];
  for (const i of items)
    if (!(EXCLUSIONS as readonly string[]).includes(i))
      throw new ConfigError(`${where}: "${i}" is not one of ${EXCLUSIONS.join(', ')} (or none)`);
  return [...new Set(items)] as Exclusion[];
}

const anomalyOf = (r: PredictionRow) => (r.extra.anomaly ?? '').trim();

/** Splits rows into the evaluation set and the slides left out, each with its reason (anomalous first). */
export function evaluationScope(
  rows: readonly PredictionRow[],
  exclude: readonly Exclusion[],
): { included: PredictionRow[]; set: Omit<EvaluationSet, 'slides' | 'patients'> } {
  const included: PredictionRow[] = [];
  const excluded: ExcludedSlide[] = [];
  for (const r of rows) {
    const reason: Exclusion | undefined =
      exclude.includes('anomalous') && anomalyOf(r)
        ? 'anomalous'
        : exclude.includes('ood-flagged') && r.oodFlag
          ? 'ood-flagged'
          : undefined;
    if (!reason) included.push(r);
    else
      excluded.push({
        slideId: r.slideId,
        patientId: r.patientId,
        reason,
        ...(reason === 'anomalous' ? { detail: anomalyOf(r) } : {}),
        label: r.label,
        pred: r.pred,
      });
  }
  const words: Record<Exclusion, string> = {
    anomalous: 'slides the reference marks anomalous (not the tissue the model grades)',
    'ood-flagged': "slides the model's OOD detector flags (referred to a pathologist, not graded)",
  };
  const rule = exclude.length
    ? `every labelled slide except ${exclude.map((e) => words[e]).join(' and ')}`
    : 'every labelled slide (nothing excluded)';
  return { included, set: { rule, exclude: [...exclude], excluded } };
}
