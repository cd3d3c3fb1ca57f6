import { gradeLabel, hex, tileClasses, tileClassColour, tileClassName } from './colours.ts';
import type { HeatmapTile, SlideHeatmap } from './heatmap.ts';

type Ring = [number, number][];
type Rect = { x0: number; y0: number; x1: number; y1: number };

const OOD_CLASS = 'Out of distribution';
const OOD_COLOUR: [number, number, number] = [230, 0, 230];

function square(t: HeatmapTile, span: number): Ring {
  return [
    [t.x, t.y],
    [t.x + span, t.y],
    [t.x + span, t.y + span],
    [t.x, t.y + span],
    [t.x, t.y],
  ];
}

/**
 * Tiles of one class merged into rectangles: runs along each row, then identical runs of touching rows
 * stacked, so a region becomes a few rectangles that never overlap (not one square per tile).
 */
export function mergeTiles(tiles: readonly HeatmapTile[], span: number): Rect[] {
  const rows = new Map<number, number[]>();
  for (const t of tiles) rows.set(t.y, [...(rows.get(t.y) ?? []), t.x]);
  const runs: Rect[] = [];
  for (const [y, xs] of [...rows.entries()].sort((a, b) => a[0] - b[0])) {
    xs.sort((a, b) => a - b);
    let start = xs[0];
    let end = xs[0] + span;
    for (const x of xs.slice(1)) {
      if (x <= end) end = Math.max(end, x + span);
      else {
        runs.push({ x0: start, x1: end, y0: y, y1: y + span });
        start = x;
        end = x + span;
      }
    }
    runs.push({ x0: start, x1: end, y0: y, y1: y + span });
  }
  const rects: Rect[] = [];
  for (const r of runs) {
    const above = rects.find((o) => o.x0 === r.x0 && o.x1 === r.x1 && o.y1 === r.y0);
    if (above) above.y1 = r.y1;
    else rects.push({ ...r });
  }
  return rects;
}

const rectRing = (r: Rect): Ring => [
  [r.x0, r.y0],
  [r.x1, r.y0],
  [r.x1, r.y1],
  [r.x0, r.y1],
  [r.x0, r.y0],
];

function measurements(h: SlideHeatmap, t: HeatmapTile): Record<string, number> {
  const m: Record<string, number> = {};
  if (h.model.head === 'patterns') tileClasses(h).forEach((c) => (m[`P(${tileClassName(h, c)})`] = t.probs[c]));
  else h.classes.forEach((_, c) => (m[`P(${gradeLabel(h.classes, c)})`] = t.probs[c]));
  m['Expected grade'] = t.expected;
  if (t.ood !== null) m['OOD score'] = t.ood;
  if (t.attention !== null) m['Attention'] = t.attention;
  return m;
}

/**
 * Tiles are classed "tile score toward ISUP n": a tile's own score is not a grade (a grade group is a
 * case-level construct from the patterns' areas), and QuPath shows the class name on every region.
 *
 * A GeoJSON FeatureCollection in QuPath's convention (level-0 pixel coordinates; properties objectType,
 * classification {name, color}, measurements), which plain GeoJSON readers take as it is. `tiles` gives
 * one detection per tile with its probabilities; otherwise one annotation per predicted grade (and one
 * for OOD-flagged tiles) with merged regions.
 */
export function toGeoJson(h: SlideHeatmap, mode: 'regions' | 'tiles'): object {
  const features: object[] = [];
  if (mode === 'tiles') {
    for (const t of h.tiles) {
      features.push({
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [square(t, h.tileSpan)] },
        properties: {
          objectType: 'detection',
          classification: { name: tileClassName(h, t.pred), color: tileClassColour(h, t.pred) },
          measurements: measurements(h, t),
          isLocked: false,
        },
      });
    }
  } else {
    const groups: [string, [number, number, number], HeatmapTile[]][] = tileClasses(h).map((c) => [
      tileClassName(h, c),
      tileClassColour(h, c),
      h.tiles.filter((t) => t.pred === c),
    ]);
    groups.push([OOD_CLASS, OOD_COLOUR, h.tiles.filter((t) => t.oodFlag)]);
    for (const [name, color, tiles] of groups) {
      if (!tiles.length) continue;
      features.push({
        type: 'Feature',
        geometry: { type: 'MultiPolygon', coordinates: mergeTiles(tiles, h.tileSpan).map((r) => [rectRing(r)]) },
        properties: {
          objectType: 'annotation',
          name: `${name} (${tiles.length} tiles)`,
          classification: { name, color },
          measurements: { Tiles: tiles.length, 'Mean top probability': tiles.reduce((a, t) => a + Math.max(...t.probs), 0) / tiles.length },
          isLocked: false,
        },
      });
    }
  }
  return { type: 'FeatureCollection', features };
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/** ASAP's annotation XML: one polygon per merged region, grouped (and coloured) by grade and OOD. */
export function toAsapXml(h: SlideHeatmap): string {
  const groups: [string, [number, number, number], HeatmapTile[]][] = tileClasses(h).map((c) => [
    tileClassName(h, c),
    tileClassColour(h, c),
    h.tiles.filter((t) => t.pred === c),
  ]);
  groups.push([OOD_CLASS, OOD_COLOUR, h.tiles.filter((t) => t.oodFlag)]);
  const annotations: string[] = [];
  let n = 0;
  for (const [name, color, tiles] of groups) {
    for (const r of mergeTiles(tiles, h.tileSpan)) {
      const coords = rectRing(r)
        .slice(0, 4)
        .map(([x, y], i) => `        <Coordinate Order="${i}" X="${x}" Y="${y}" />`)
        .join('\n');
      annotations.push(
        `    <Annotation Name="Annotation ${n++}" Type="Polygon" PartOfGroup="${xmlEscape(name)}" Color="${hex(color)}">\n      <Coordinates>\n${coords}\n      </Coordinates>\n    </Annotation>`,
      );
    }
  }
  const used = groups.filter((g) => g[2].length);
  const groupXml = used
    .map(
      ([name, color]) =>
        `    <Group Name="${xmlEscape(name)}" PartOfGroup="None" Color="${hex(color)}">\n      <Attributes />\n    </Group>`,
    )
    .join('\n');
  return `<?xml version="1.0"?>\n<ASAP_Annotations>\n  <Annotations>\n${annotations.join('\n')}\n  </Annotations>\n  <AnnotationGroups>\n${groupXml}\n  </AnnotationGroups>\n</ASAP_Annotations>\n`;
}
