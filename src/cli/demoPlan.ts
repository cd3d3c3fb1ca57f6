// What the demo makes at each size, and the plan it prints first.

export interface DemoPlan {
  slides: number;
  size: number;
  /** A held-out test set from the training sites (new patients): inference only, so it can be large. */
  testSlides: number;
  siteSlides: number;
  epochs: number;
  tilesPerEpoch: number;
  /** Training runs (seeds) per recipe for the paired comparisons: one run cannot tell a recipe from luck. */
  seeds: number;
  suites: string[];
  /**
   * The main recipes learn Gleason patterns from the slides' masks (model.head: patterns), and a
   * slide-label recipe is trained beside them as the baseline of a paired comparison. The quick run
   * trains slide labels only: at its 5 epochs on 60 small slides the pattern model is not yet the
   * better one (held-out QWK 0.32 against 0.84, measured; it overtakes with more epochs and slides).
   */
  patterns: boolean;
}

export const PLANS: Record<'quick' | 'full', DemoPlan> = {
  quick: {
    slides: 60,
    size: 1024,
    testSlides: 24,
    siteSlides: 8,
    epochs: 5,
    tilesPerEpoch: 960,
    seeds: 1,
    suites: ['stain-shift'],
    patterns: false,
  },
  full: {
    slides: 96,
    size: 1536,
    testSlides: 150,
    siteSlides: 60,
    epochs: 10,
    tilesPerEpoch: 2000,
    seeds: 2,
    suites: ['stain-shift', 'clinical-scanners', 'artifacts'],
    patterns: true,
  },
};

export const DEMO_PLAN = `gradelab demo runs the whole workflow on built-in synthetic slides:
  1. synthesise prostate slides from three sites and scanners (with rare anomalies), and an unseen fourth site
  2. tile them at 1.0 um/px and split patients into folds; a larger held-out test set of new patients
  3. train a grading network with stain augmentation, and a baseline without (two seeds each in the full run,
     where both learn Gleason patterns from the masks and a slide-label network is trained as the
     supervision baseline), and fit each one's temperature on its validation slides; heads with three
     seeds on a frozen ONNX encoder's cached embeddings (the foundation-model recipe)
  4. fit out-of-distribution detectors (feature-space and slide-quality)
  5. evaluate on the held-out set with patient-bootstrap confidence intervals, and compare the models
     paired (stain augmentation, and in the full run pattern against slide-label supervision), on the
     held-out set and on the unseen site
  6. map the model over the held-out and unseen-site slides (heatmaps, QuPath annotations, a static viewer)
  7. run robustness suites against acceptance criteria, a precision study (rescans on one simulated scanner,
     and across three), measure how much each model's embedding encodes the site (RI, CRoMa, APD), and
     audit the unseen site
  8. write the report (HTML, PDF, JSON), and the foundation heads' own (OOD on the encoder's features,
     evaluation), and print where each output is`;
