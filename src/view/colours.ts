/**
 * Colours the viewer, the overlays and the annotation exports share, so a grade looks the same in
 * gradelab, QuPath and ASAP: benign green through yellow and orange to dark red.
 */
const PROSTATE: [number, number, number][] = [
  [46, 160, 67],
  [160, 200, 60],
  [245, 210, 50],
  [245, 140, 40],
  [220, 50, 40],
  [130, 20, 40],
];
const BREAST: [number, number, number][] = [
  [160, 200, 60],
  [245, 140, 40],
  [200, 30, 40],
];

/** The colour of class index `c` of `k` classes (6: ISUP 0-5, 3: Nottingham 1-3). */
export function gradeColour(c: number, k: number): [number, number, number] {
  const table = k === 3 ? BREAST : PROSTATE;
  return table[Math.max(0, Math.min(table.length - 1, c))];
}

/** How a class index is named: "ISUP 3", "Nottingham 2". */
export function gradeLabel(classes: readonly number[], c: number): string {
  return classes.length === 3 ? `Nottingham ${classes[c]}` : `ISUP ${classes[c]}`;
}

/**
 * How a tile's colour is named in legends and tile details: a tile's own score points toward a grade,
 * but a grade (ISUP grade group, Nottingham grade) is a case-level construct, so the label says so.
 */
export function tileLegendLabel(classes: readonly number[], c: number): string {
  return `tile score toward ${gradeLabel(classes, c)}`;
}

/**
 * Gleason pattern colours (benign green, pattern 3 yellow, 4 orange, 5 dark red), as pathologists' pattern
 * maps and PANDA's mask viewers draw them.
 */
const PATTERNS: [number, number, number][] = [
  [46, 160, 67],
  [245, 210, 50],
  [245, 140, 40],
  [170, 25, 45],
];
const PATTERN_NAMES = ['benign', 'Gleason pattern 3', 'Gleason pattern 4', 'Gleason pattern 5'];
/** ISUP class of each pattern (core's PATTERN_ISUP): where a pattern head writes its tile probabilities. */
const PATTERN_ISUP_CLASSES = [0, 1, 4, 5];

/** What draws a slide's tiles: its classes and the head that scored them (a pattern head's tiles are patterns). */
export interface TileClassSource {
  classes: readonly number[];
  model: { head: string };
}

/** The classes a tile can be given: a pattern head's four patterns (as ISUP classes), or every grade class. */
export function tileClasses(h: TileClassSource): number[] {
  return h.model.head === 'patterns' ? PATTERN_ISUP_CLASSES : h.classes.map((_, c) => c);
}

/** A tile class's name in legends, tile details and annotation exports. */
export function tileClassName(h: TileClassSource, c: number): string {
  if (h.model.head === 'patterns') return PATTERN_NAMES[Math.max(0, PATTERN_ISUP_CLASSES.indexOf(c))];
  return tileLegendLabel(h.classes, c);
}

/** A tile class's colour: pattern colours for a pattern head, grade colours otherwise. */
export function tileClassColour(h: TileClassSource, c: number): [number, number, number] {
  if (h.model.head === 'patterns') return PATTERNS[Math.max(0, PATTERN_ISUP_CLASSES.indexOf(c))];
  return gradeColour(c, h.classes.length);
}

/**
 * A label mask value's colour (Radboud's values, which synthetic slides write; 6 = anomaly): benign
 * epithelium and Gleason patterns 3-5 in the pattern colours, so the truth overlay reads like a pattern
 * model's map; background and stroma left clear.
 */
export function maskValueColour(v: number): [number, number, number] | undefined {
  if (v === 6) return [230, 0, 230];
  return v >= 2 && v <= 5 ? PATTERNS[v - 2] : undefined;
}

/** The truth overlay's legend: what each colour of a label mask means (anomalies added by the viewer). */
export const MASK_LEGEND: { label: string; colour: [number, number, number] }[] = [2, 3, 4, 5].map((v, i) => ({
  label: i === 0 ? 'benign epithelium' : `Gleason pattern ${v}`,
  colour: PATTERNS[i],
}));

/** Viridis at t in [0, 1] (5 stops, linear between): perceptually ordered for scores and attention. */
export function rampColour(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((ch) => Math.round(stops[i][ch] + f * (stops[i + 1][ch] - stops[i][ch]))) as [number, number, number];
}

export const hex = (c: readonly number[]) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
