import { join } from 'node:path';
import { z } from 'zod';
import { loadJsonFile } from '../core/index.ts';

/**
 * The JSON files gradelab's evaluations write and its report reads back (metrics.json, ood.json, a
 * suite's results.json, audit.json, compare.json), as contracts: each is read through its schema, so a
 * file cut short, edited by hand or from another version is one line naming the file and the field,
 * never a crash deep in the report. Numbers that were undefined (NaN) are stored as null.
 */

const num = z.number().nullable();
export const estimateJson = z
  .object({ value: num, ci95: z.tuple([num, num]), method: z.string().optional(), note: z.string().optional() })
  .loose();
export type EstimateJson = z.infer<typeof estimateJson>;

const subgroupJson = z
  .object({ n: z.number(), patients: z.number().optional(), qwk: estimateJson.optional(), accuracy: estimateJson, mae: estimateJson })
  .loose();

export const metricsFileSchema = z
  .object({
    source: z
      .object({ model: z.string().optional(), data: z.string().optional(), split: z.string().optional(), fold: z.number().optional() })
      .loose()
      .optional(),
    task: z.enum(['prostate', 'breast']),
    n: z.number().int(),
    patients: z.number().int(),
    evaluation_set: z
      .object({
        rule: z.string(),
        exclude: z.array(z.string()),
        slides: z.array(z.string()),
        patients: z.number(),
        excluded: z.array(
          z
            .object({
              slideId: z.string(),
              patientId: z.string(),
              reason: z.enum(['anomalous', 'ood-flagged']),
              detail: z.string().optional(),
              label: z.number().nullable().optional(),
              pred: z.number(),
            })
            .loose(),
        ),
      })
      .optional(),
    bootstrap: z.object({ resamples: z.number(), seed: z.number() }).loose(),
    qwk: estimateJson,
    kappa: estimateJson,
    accuracy: estimateJson,
    balanced_accuracy: estimateJson,
    mae: estimateJson,
    brier: estimateJson,
    ece: estimateJson,
    auroc: estimateJson.optional(),
    cutoffs: z.array(
      z
        .object({ name: z.string(), prevalence: z.number(), auroc: estimateJson, sensitivity: estimateJson, specificity: estimateJson })
        .loose(),
    ),
    subgroups: z
      .object({
        site: z.record(z.string(), subgroupJson),
        scanner: z.record(z.string(), subgroupJson),
        grade: z.record(z.string(), subgroupJson),
      })
      .loose(),
    agreement: z
      .object({ pairwise: z.array(z.object({ a: z.string(), b: z.string(), kappa: z.number(), qwk: z.number() }).loose()) })
      .loose()
      .nullable()
      .optional(),
    referral: z
      .object({
        uncertainty: z.string(),
        aurc: z.number(),
        curve: z.array(z.object({ coverage: z.number(), kept: z.number(), qwk: num, accuracy: z.number() }).loose()),
      })
      .loose(),
    /** From gradelab 0.2's selective-prediction analysis on; older metrics files lack it. */
    selective: z
      .object({
        risk: z.number(),
        oracleAurc: z.number(),
        scores: z.array(z.object({ score: z.string(), aurc: estimateJson, eaurc: estimateJson })),
        coverageAtQwk: z.array(z.object({ target: z.number(), coverage: z.number().nullable() })),
        coverageAtSensitivity: z.array(z.object({ cutoff: z.string(), target: z.number(), coverage: z.number().nullable() })).optional(),
      })
      .optional(),
  })
  .loose();
export type MetricsFile = z.infer<typeof metricsFileSchema>;

const oodMetricsJson = z.object({ auroc: estimateJson, fpr95: estimateJson }).loose();
const levelJson = z.object({ tile: oodMetricsJson.nullable(), slide: oodMetricsJson }).loose();
export const oodFileSchema = z
  .object({
    idTiles: z.number(),
    oodTiles: z.number(),
    primary: z.string(),
    accept: z.number(),
    detectors: z.record(z.string(), z.object({ all: levelJson, groups: z.record(z.string(), levelJson) }).loose()),
    gradingAfterRejection: z.object({
      all: z.object({ slides: z.number(), qwk: num }).loose(),
      accepted: z.object({ slides: z.number(), qwk: num }).loose(),
    }),
  })
  .loose();
export type OodFile = z.infer<typeof oodFileSchema>;

const cleanUnitJson = z
  .object({
    condition: z.string(),
    severity: z.number(),
    slides: z.number(),
    qwk: estimateJson,
    ece: num.optional(),
    slidePreds: z.array(z.tuple([z.string(), z.string(), z.number(), z.number()])).optional(),
  })
  .loose();
// Only the corrupted units carry a drop against clean.
const unitJson = cleanUnitJson.extend({
  qwkDrop: num,
  qwkDropCi: z.tuple([num, num]).optional(),
  dropSignificant: z.boolean().optional(),
});
export const suiteResultsSchema = z
  .object({
    suite: z.string(),
    tilesPerSlide: z.number().optional(),
    clean: cleanUnitJson,
    units: z.array(unitJson),
    severitySeparation: z
      .array(
        z.object({ condition: z.string(), low: z.number(), high: z.number(), difference: estimateJson, significant: z.boolean() }).loose(),
      )
      .optional(),
    mCE: num,
    relativeMCE: num,
    relativeUndefined: z.array(z.string()).optional(),
    criteria: z.array(
      z
        .object({
          criterion: z.string(),
          pass: z.boolean(),
          status: z.enum(['pass', 'fail', 'not-evaluable']).optional(),
          evidence: z.string(),
        })
        .loose(),
    ),
    passed: z.boolean(),
  })
  .loose();
export type SuiteResultsFile = z.infer<typeof suiteResultsSchema>;

export const auditFileSchema = z
  .object({
    source: z.object({ site: z.string() }).loose().optional(),
    site: z.object({ slides: z.number(), patients: z.number() }).loose(),
    findings: z.array(z.string()),
  })
  .loose();
export type AuditFile = z.infer<typeof auditFileSchema>;

const pairedJson = z
  .object({
    a: z.number(),
    b: z.number(),
    difference: estimateJson,
    shareBBetter: num,
    significant: z.boolean(),
    patients: z.number().optional(),
    note: z.string().optional(),
  })
  .loose();
export const compareFileSchema = z
  .object({
    nameA: z.string(),
    nameB: z.string(),
    runsA: z.number(),
    runsB: z.number(),
    slides: z.number(),
    patients: z.number(),
    evaluationSet: z
      .object({ rule: z.string(), excluded: z.array(z.object({ slideId: z.string(), reason: z.string() }).loose()) })
      .optional(),
    resamples: z.number(),
    seed: z.number(),
    metrics: z.array(pairedJson.extend({ metric: z.string(), lowerIsBetter: z.boolean() })),
  })
  .loose();
export type CompareFile = z.infer<typeof compareFileSchema>;

/** patterns.json (gradelab eval of a pattern model on masked tiles): its agreement with the masks. */
export const patternsFileSchema = z
  .object({
    tiles: z.number().int(),
    slides: z.number().int(),
    patients: z.number().int(),
    accuracy: estimateJson,
    kappa: estimateJson,
    classes: z.array(
      z
        .object({ name: z.string(), support: z.number().int(), sensitivity: estimateJson, dice: estimateJson, areaError: estimateJson })
        .loose(),
    ),
    confusion: z.array(z.array(z.number().int())),
  })
  .loose();
export type PatternsFile = z.infer<typeof patternsFileSchema>;

/** The evaluation outputs gradelab reads back, by folder: each file checked against its contract. */
export const readMetricsFile = (dir: string): MetricsFile =>
  loadJsonFile(join(dir, 'metrics.json'), metricsFileSchema, 'metrics file (gradelab eval)');
export const readOodFile = (dir: string): OodFile =>
  loadJsonFile(join(dir, 'ood.json'), oodFileSchema, 'OOD evaluation (gradelab ood eval)');
export const readSuiteResults = (dir: string): SuiteResultsFile =>
  loadJsonFile(join(dir, 'results.json'), suiteResultsSchema, 'robustness results (gradelab robustness)');
export const readAuditFile = (dir: string): AuditFile =>
  loadJsonFile(join(dir, 'audit.json'), auditFileSchema, 'site audit (gradelab audit)');
export const readPatternsFile = (dir: string): PatternsFile =>
  loadJsonFile(join(dir, 'patterns.json'), patternsFileSchema, 'pattern agreement (gradelab eval)');
export const readCompareFile = (dir: string): CompareFile =>
  loadJsonFile(join(dir, 'compare.json'), compareFileSchema, 'comparison (gradelab compare)');

const mrmcIntervalSchema = z
  .object({ estimate: z.number(), se: z.number(), df: z.number().nullable(), lower: z.number(), upper: z.number() })
  .loose();
const mrmcDifferenceSchema = mrmcIntervalSchema.extend({ a: z.string(), b: z.string(), p: z.number() });

/** mrmc.json (gradelab mrmc): what the report reads of a reader study's analysis. */
export const mrmcFileSchema = z
  .object({
    format: z.literal('gradelab-mrmc/1'),
    source: z.string(),
    fom: z.enum(['auc', 'accuracy', 'qwk']),
    modalities: z.array(z.string()),
    readers: z.array(z.string()),
    cases: z.number().int(),
    modalityFom: z.array(z.number()),
    rrrc: z
      .object({
        F: z.number(),
        ndf: z.number(),
        ddf: z.number(),
        p: z.number(),
        differences: z.array(mrmcDifferenceSchema),
        single: z.array(mrmcIntervalSchema),
      })
      .loose(),
    frrc: z
      .object({
        chi2: z.number(),
        df: z.number(),
        p: z.number(),
        differences: z.array(mrmcDifferenceSchema),
        single: z.array(mrmcIntervalSchema),
      })
      .loose(),
  })
  .loose();
export type MrmcFile = z.infer<typeof mrmcFileSchema>;
export const readMrmcFile = (dir: string): MrmcFile => loadJsonFile(join(dir, 'mrmc.json'), mrmcFileSchema, 'reader study (gradelab mrmc)');

const calibrationFiguresSchema = z.object({ nll: z.number(), ece: z.number(), eceEqualMass: z.number(), classwiseEce: z.number() });
const groupFiguresSchema = z.object({
  group: z.string(),
  slides: z.number(),
  before: calibrationFiguresSchema,
  after: calibrationFiguresSchema,
});

/** calibration/calibration.json in a model folder (gradelab calibrate). */
export const calibrationFileSchema = z
  .object({
    format: z.literal('gradelab-calibration/1'),
    /** Absent in files from before pattern models: temperature scaling. */
    method: z.enum(['temperature', 'softness']).optional(),
    temperature: z.number().positive(),
    split: z.string(),
    fold: z.number(),
    slides: z.number(),
    patients: z.number(),
    before: calibrationFiguresSchema,
    after: calibrationFiguresSchema,
    intervals: z.object({
      before: z.object({ ece: estimateJson, eceEqualMass: estimateJson }),
      after: z.object({ ece: estimateJson, eceEqualMass: estimateJson }),
    }),
    bySite: z.array(groupFiguresSchema),
    byScanner: z.array(groupFiguresSchema),
  })
  .loose();
export type CalibrationFile = z.infer<typeof calibrationFileSchema>;
export const readCalibrationFile = (dir: string): CalibrationFile =>
  loadJsonFile(join(dir, 'calibration.json'), calibrationFileSchema, 'calibration (gradelab calibrate)');

/** precision.json (gradelab precision): a repeatability or reproducibility study of slide grades. */
export const precisionFileSchema = z
  .object({
    format: z.literal('gradelab-precision/1'),
    kind: z.enum(['repeatability', 'reproducibility']),
    acquisitions: z.array(z.string()),
    slides: z.number(),
    patients: z.number(),
    tiles: z.number(),
    identical: estimateJson,
    fleiss: estimateJson,
    pairwiseKappa: estimateJson,
    meanAbsoluteDifference: estimateJson,
    flips: z.array(z.object({ cutoff: z.string(), rate: estimateJson })),
    pairs: z.array(z.object({ a: z.string(), b: z.string(), identical: z.number(), kappa: z.number() })),
  })
  .loose();
export type PrecisionFile = z.infer<typeof precisionFileSchema>;
export const readPrecisionFile = (dir: string): PrecisionFile =>
  loadJsonFile(join(dir, 'precision.json'), precisionFileSchema, 'precision study (gradelab precision)');
