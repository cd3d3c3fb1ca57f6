import { estimateStainsMacenko, MacenkoNormalizer, rgbToHed, tissueWeight } from '../augment/index.ts';
import { createRng, imagesToBatch, scopeProblems, shuffled, type ModelPredictor, type RgbImage, type TileOutputs } from '../core/index.ts';
import {
  loadSplit,
  readDatasetTile,
  slideMppOf,
  TileReader,
  spreadTilesPerSlide,
  tilesOfPartition,
  type TileDataset,
  type TileRow,
} from '../data/index.ts';
import { hasOodBundle, imagesQuality, loadOodBundle, needsQuality } from '../ood/index.ts';
import { bootstrapByPatient, MIN_PATIENTS_FOR_VERDICT, pairedBootstrap, type Estimate, type PairedEstimate } from './bootstrap.ts';
import { evaluatePredictions, type MetricsReport } from './evaluate.ts';
import { proportionEstimate } from './intervals.ts';
import { scoreWithPrimaryDetector } from './oodScoring.ts';
import { poolSlides, quadraticWeightedKappa } from '../metrics/index.ts';
import type { PredictionRow } from './predictions.ts';
import type { TilePredictions } from '../data/index.ts';
import { representationShift } from './shift.ts';
import { siteSeparability, type SiteSeparability } from './auditSeparability.ts';
import { auditFindings } from './auditFindings.ts';

/** Median Macenko stain vectors and mean H/E optical density over tissue pixels. */
export interface ColourStats {
  hVector: number[];
  eVector: number[];
  meanH: number;
  meanE: number;
  tiles: number;
}

/**
 * A model audited on a new site's slides before it goes live. Grading uses every tile of every slide,
 * pooled as predict pools them, so the site's grades here are the grades predict gives; the
 * representation and stain statistics use an even sample of tiles per slide. Every claim carries a 95%
 * interval over the site's patients and the number of slides behind it.
 */
export interface SiteAudit {
  format: 'gradelab-audit/2';
  site: { slides: number; patients: number; tiles: number };
  reference: { tiles: number; slides: number };
  representationShift: {
    value: Estimate;
    withinTraining: number;
    ratio: number;
    afterNormalisation: number;
    tiles: { site: number; reference: number };
  };
  /** Can the model's features tell the site from the training data, and do its tiles sit with training tiles of their grade? */
  separability: SiteSeparability;
  /** Share of the site's slides the primary OOD detector flags (Wilson interval over slides, patient design effect). */
  oodFlagRate: (Estimate & { detector: string; slides: number }) | null;
  colour: {
    training: Record<string, ColourStats>;
    site: ColourStats;
    trainingPooled: ColourStats;
    angleDegrees: { h: Estimate; e: Estimate };
  };
  gradeDistribution: { classes: number[]; predicted: number[]; training: number[]; totalVariation: Estimate };
  performance: {
    qwk: Estimate;
    accuracy: Estimate;
    slides: number;
    patients: number;
    evaluationSet: MetricsReport['evaluationSet'];
  } | null;
  normalisation: { shiftAfter: number; qwk: PairedEstimate | null };
  /** Every site slide's grade (class index) as predict gives it, with and without normalisation. */
  slides: {
    slideId: string;
    patientId: string;
    label: number | null;
    pred: number;
    oodFlag: boolean | null;
    normalisedPred: number;
    /** Why the slide is outside the model's intended use (empty: inside). */
    scopeProblems: string[];
  }[];
  findings: string[];
}

export interface SiteAuditOptions {
  resamples: number;
  seed: number;
  /** Tiles sampled (16 per slide at most) for the representation and stain statistics. */
  maxTiles: number;
  /** The training partition's fold (its train part is the reference). */
  fold?: number;
  onTiles?: (done: number, total: number) => void;
}

const PER_SLIDE = 16;
const BATCH = 64;

function sample(tiles: TileRow[], max: number, key: string): TileRow[] {
  return tiles.length <= max ? tiles : shuffled(tiles, createRng(key)).slice(0, max);
}

export function colourStats(images: readonly RgbImage[]): ColourStats {
  const est = images.map((img) => estimateStainsMacenko(img));
  let h = 0;
  let e = 0;
  let n = 0;
  for (const img of images) {
    const hed = rgbToHed(img);
    for (let i = 0; i < hed.length; i += 3) {
      if (tissueWeight(img.data[i], img.data[i + 1], img.data[i + 2]) < 1) continue;
      h += hed[i];
      e += hed[i + 1];
      n++;
    }
  }
  return {
    hVector: medianVector(est.flatMap((x) => (x ? [x.stains[0]] : []))),
    eVector: medianVector(est.flatMap((x) => (x ? [x.stains[1]] : []))),
    meanH: n ? h / n : NaN,
    meanE: n ? e / n : NaN,
    tiles: images.length,
  };
}

function medianVector(vs: number[][]): number[] {
  return [0, 1, 2].map((c) => {
    const s = vs.map((v) => v[c]).sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : NaN;
  });
}

/** The angle in degrees between two stain vectors (sign-free). */
export function stainAngle(a: number[], b: number[]): number {
  const cos = Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (Math.hypot(...a) * Math.hypot(...b) || 1);
  return (Math.acos(Math.min(1, cos)) * 180) / Math.PI;
}

async function readImages(ds: TileDataset, tiles: readonly TileRow[]): Promise<RgbImage[]> {
  const reader = new TileReader();
  try {
    return await Promise.all(tiles.map((t) => readDatasetTile(ds, t, reader)));
  } finally {
    await reader.close();
  }
}

const run = (model: ModelPredictor, images: readonly RgbImage[]): Promise<TileOutputs> =>
  model.runImages ? model.runImages(images) : model.run(imagesToBatch(images));

/** Concatenates per-batch outputs of one model into tile predictions. */
class Outputs {
  private probs: number[] = [];
  private features: number[] = [];
  private logits: number[] = [];
  add(r: TileOutputs): void {
    for (const v of r.probs) this.probs.push(v);
    for (const v of r.features) this.features.push(v);
    for (const v of r.logits) this.logits.push(v);
  }
  result(tiles: TileRow[], model: ModelPredictor): TilePredictions {
    return {
      tiles,
      k: model.k,
      probs: Float32Array.from(this.probs),
      head: model.meta.head,
      grading: model.meta.patternGrading,
      features: Float32Array.from(this.features),
      featureDim: tiles.length ? this.features.length / tiles.length : 0,
      logits: Float32Array.from(this.logits),
    };
  }
}

/**
 * Every tile of the site through the model as it is and Macenko-normalised to the training reference,
 * in batches (memory bounded by the batch, not the site), with quality features when the primary OOD
 * detector reads them.
 */
async function scoreSite(
  model: ModelPredictor,
  site: TileDataset,
  tiles: TileRow[],
  normaliser: MacenkoNormalizer,
  quality: boolean,
  onTiles?: (done: number, total: number) => void,
): Promise<{ raw: TilePredictions; normalised: TilePredictions; quality?: Float32Array }> {
  const raw = new Outputs();
  const norm = new Outputs();
  const q: number[] = [];
  const reader = new TileReader();
  try {
    for (let i = 0; i < tiles.length; i += BATCH) {
      const images = await Promise.all(tiles.slice(i, i + BATCH).map((t) => readDatasetTile(site, t, reader)));
      raw.add(await run(model, images));
      norm.add(
        await run(
          model,
          images.map((img) => normaliser.transform(img)),
        ),
      );
      if (quality) for (const v of imagesQuality(images)) q.push(v);
      onTiles?.(Math.min(tiles.length, i + BATCH), tiles.length);
    }
  } finally {
    await reader.close();
  }
  return { raw: raw.result(tiles, model), normalised: norm.result(tiles, model), quality: quality ? Float32Array.from(q) : undefined };
}

/** Rows of `features` (n x d) at `idx`. */
function rowsOf(features: Float32Array, d: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) out.set(features.subarray(idx[i] * d, (idx[i] + 1) * d), i * d);
  return out;
}

export async function auditSite(
  model: ModelPredictor,
  modelDir: string,
  site: TileDataset,
  training: TileDataset,
  options: SiteAuditOptions,
): Promise<SiteAudit> {
  const classes = model.meta.classes;
  const k = classes.length;
  const boot = { resamples: options.resamples, seed: options.seed };
  const trainingTiles = tilesOfPartition(training, await loadSplit(training.dir), 'train', options.fold ?? 0).filter((t) => !t.anomaly);
  const refTiles = sample(spreadTilesPerSlide(trainingTiles, PER_SLIDE), options.maxTiles, 'audit-ref');
  const siteTiles = site.tiles.filter((t) => !t.anomaly);
  const sampled = new Set(sample(spreadTilesPerSlide(siteTiles, PER_SLIDE), options.maxTiles, 'audit-site'));
  const sampleIdx = siteTiles.flatMap((t, i) => (sampled.has(t) ? [i] : []));
  const refImages = await readImages(training, refTiles);
  const refOut = new Outputs();
  for (let i = 0; i < refImages.length; i += BATCH) refOut.add(await run(model, refImages.slice(i, i + BATCH)));
  const ref = refOut.result(refTiles, model);
  const normaliser = new MacenkoNormalizer().fit(mosaic(refImages));
  const quality = hasOodBundle(modelDir) && needsQuality([loadOodBundle(modelDir).bundle.primary]);
  const scored = await scoreSite(model, site, siteTiles, normaliser, quality, options.onTiles);
  const d = ref.featureDim;

  // Representation shift: the site's sampled tiles against the reference, with the within-training floor.
  const siteFeatures = rowsOf(scored.raw.features!, d, sampleIdx);
  const half = Math.floor(refTiles.length / 2);
  const floor = representationShift(ref.features!.subarray(0, half * d), half, ref.features!.subarray(half * d), refTiles.length - half, d);
  const samplePatients = sampleIdx.map((i) => siteTiles[i].patientId);
  const shift = bootstrapByPatient(
    samplePatients,
    (rows) => representationShift(ref.features!, refTiles.length, rowsOf(siteFeatures, d, rows), rows.length, d),
    { ...boot, seed: `${options.seed}/audit/shift` },
  );
  const separability = siteSeparability(
    { tiles: refTiles, features: ref.features! },
    { tiles: sampleIdx.map((i) => siteTiles[i]), features: siteFeatures },
    d,
    { resamples: options.resamples, seed: `${options.seed}/audit/separability` },
  );
  const shiftAfter = representationShift(
    ref.features!,
    refTiles.length,
    rowsOf(scored.normalised.features!, d, sampleIdx),
    sampleIdx.length,
    d,
  );

  // Slides graded as predict grades them; OOD flags from the primary detector.
  const ood = await scoreWithPrimaryDetector(modelDir, scored.raw, classes, async () => scored.quality!);
  const slides = poolSlides(scored.raw, classes);
  const siteMpp = slideMppOf(site);
  const normSlides = poolSlides(scored.normalised, classes);
  if (ood) for (const r of slides) r.oodFlag = ood.slideFlags.get(r.slideId);
  const slidePatients = slides.map((s) => s.patientId);
  const oodFlagRate = ood
    ? {
        ...proportionEstimate(
          slides.map((s) => (s.oodFlag ? 1 : 0)),
          slidePatients,
          { ...boot, seed: `${options.seed}/audit/ood` },
        ),
        detector: ood.detector,
        slides: slides.length,
      }
    : null;

  // Stain statistics on the sampled tiles; the angle's interval resamples the site's patients.
  const siteImages = await readImages(
    site,
    sampleIdx.map((i) => siteTiles[i]),
  );
  const trainSites = [...new Set(refTiles.map((t) => t.site))].sort();
  const refColour = colourStats(refImages);
  const siteStains = siteImages.map((img) => estimateStainsMacenko(img));
  const angleOf = (which: 0 | 1, ref: number[]) => (rows: Int32Array) =>
    stainAngle(medianVector(Array.from(rows).flatMap((i) => (siteStains[i] ? [siteStains[i]!.stains[which]] : []))), ref);
  const colour = {
    training: Object.fromEntries(trainSites.map((s) => [s, colourStats(refImages.filter((_, i) => refTiles[i].site === s))])),
    site: colourStats(siteImages),
    trainingPooled: refColour,
    angleDegrees: {
      h: bootstrapByPatient(samplePatients, angleOf(0, refColour.hVector), { ...boot, seed: `${options.seed}/audit/angle-h` }),
      e: bootstrapByPatient(samplePatients, angleOf(1, refColour.eVector), { ...boot, seed: `${options.seed}/audit/angle-e` }),
    },
  };

  // Grade distribution: predicted at the site against the labels of every training slide (not only
  // those the tile sample reached).
  const trainSlides = new Map(trainingTiles.map((t) => [t.slideId, t.grade]));
  const trainDist = classes.map((g) => [...trainSlides.values()].filter((v) => v === g).length / (trainSlides.size || 1));
  const distOf = (rows: ArrayLike<number>) =>
    classes.map((_, c) => Array.from(rows).filter((i) => slides[i].pred === c).length / (rows.length || 1));
  const totalVariation = bootstrapByPatient(
    slidePatients,
    (rows) => 0.5 * distOf(rows).reduce((s, p, i) => s + Math.abs(p - trainDist[i]), 0),
    { ...boot, seed: `${options.seed}/audit/tv` },
  );

  const labelled = slides.some((s) => s.label !== undefined);
  const performance = labelled ? evaluatePredictions({ path: site.dir, k, rows: slides }, { ...boot }) : undefined;
  const normalisedQwk = performance ? pairedNormalisation(slides, normSlides, performance, k, boot) : null;
  const audit: Omit<SiteAudit, 'findings'> = {
    format: 'gradelab-audit/2',
    site: { slides: slides.length, patients: new Set(slidePatients).size, tiles: siteTiles.length },
    reference: { tiles: refTiles.length, slides: trainSlides.size },
    representationShift: {
      value: shift,
      withinTraining: floor,
      ratio: shift.value / (floor || 1e-9),
      afterNormalisation: shiftAfter,
      tiles: { site: sampleIdx.length, reference: refTiles.length },
    },
    separability,
    oodFlagRate,
    colour,
    gradeDistribution: { classes, predicted: distOf(slides.map((_, i) => i)), training: trainDist, totalVariation },
    performance: performance
      ? {
          qwk: performance.metrics.qwk,
          accuracy: performance.metrics.accuracy,
          slides: performance.n,
          patients: performance.patients,
          evaluationSet: performance.evaluationSet,
        }
      : null,
    normalisation: { shiftAfter, qwk: normalisedQwk },
    slides: slides.map((r, i) => ({
      slideId: r.slideId,
      patientId: r.patientId,
      label: r.label ?? null,
      pred: r.pred,
      oodFlag: r.oodFlag ?? null,
      normalisedPred: normSlides[i].pred,
      scopeProblems: scopeProblems(model.meta, { ...r, slideMpp: siteMpp.get(r.slideId) }),
    })),
  };
  return { ...audit, findings: auditFindings(audit, MIN_PATIENTS_FOR_VERDICT) };
}

/** QWK with Macenko normalisation minus without, paired on the evaluation set's slides. */
function pairedNormalisation(
  slides: PredictionRow[],
  normSlides: PredictionRow[],
  performance: MetricsReport,
  k: number,
  boot: { resamples: number; seed: number },
): PairedEstimate {
  const inSet = new Set(performance.evaluationSet.slides);
  const a = slides.filter((s) => inSet.has(s.slideId));
  const byId = new Map(normSlides.map((s) => [s.slideId, s]));
  const b = a.map((s) => byId.get(s.slideId)!);
  const y = a.map((s) => s.label!);
  const qwk = (rows: PredictionRow[]) => (idx: Int32Array) =>
    quadraticWeightedKappa(
      Array.from(idx, (i) => y[i]),
      Array.from(idx, (i) => rows[i].pred),
      k,
    );
  return pairedBootstrap(
    a.map((s) => s.patientId),
    qwk(a),
    qwk(b),
    { resamples: boot.resamples, seed: `${boot.seed}/audit/normalisation` },
  );
}

/** Up to 64 tiles stacked into one image: what the Macenko normaliser is fitted on. */
function mosaic(images: readonly RgbImage[]): RgbImage {
  const w = images[0].width;
  const pick = images.slice(0, 64);
  const data = new Uint8Array(pick.length * w * w * 3);
  pick.forEach((img, i) => data.set(img.data, i * img.data.length));
  return { width: w, height: w * pick.length, data };
}
