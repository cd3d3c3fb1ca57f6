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
