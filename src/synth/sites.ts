/**
 * Staining protocols of synthetic sites. Stain vectors (unit OD per stain over R, G, B) and strengths
 * vary the way labs do: haematoxylin from blue-purple to brown-purple, eosin from pink to orange-red,
 * each lab staining lighter or darker. Each site scans with one of the augmentation library's scanner
 * profiles.
 */
export interface SiteProtocol {
  name: string;
  hVector: [number, number, number];
  eVector: [number, number, number];
  hStrength: number;
  eStrength: number;
  scanner: string;
}

const unit = (v: [number, number, number]): [number, number, number] => {
  const n = Math.hypot(...v);
  return [v[0] / n, v[1] / n, v[2] / n];
};

export const SITES: readonly SiteProtocol[] = [
  {
    name: 'site-A',
    hVector: unit([0.65, 0.7, 0.29]),
    eVector: unit([0.07, 0.99, 0.11]),
    hStrength: 1.0,
    eStrength: 1.0,
    scanner: 'neutral-reference',
  },
  {
    name: 'site-B',
    hVector: unit([0.6, 0.76, 0.25]),
    eVector: unit([0.1, 0.95, 0.2]),
    hStrength: 1.25,
    eStrength: 0.8,
    scanner: 'warm-bright',
  },
  {
    name: 'site-C',
    hVector: unit([0.7, 0.66, 0.35]),
    eVector: unit([0.04, 0.96, 0.26]),
    hStrength: 0.85,
    eStrength: 1.3,
    scanner: 'cool-contrast',
  },
  {
    name: 'site-D',
    hVector: unit([0.62, 0.72, 0.32]),
    eVector: unit([0.12, 0.98, 0.05]),
    hStrength: 0.7,
    eStrength: 0.75,
    scanner: 'faded-yellow',
  },
  {
    name: 'site-E',
    hVector: unit([0.66, 0.68, 0.33]),
    eVector: unit([0.06, 0.93, 0.35]),
    hStrength: 1.4,
    eStrength: 1.15,
    scanner: 'noisy-dim',
  },
  {
    name: 'site-F',
    hVector: unit([0.58, 0.74, 0.34]),
    eVector: unit([0.09, 0.97, 0.18]),
    hStrength: 1.05,
    eStrength: 0.95,
    scanner: 'soft-lowres',
  },
];
