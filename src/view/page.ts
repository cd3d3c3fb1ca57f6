import { hex, MASK_LEGEND, rampColour, tileClasses, tileClassColour, tileClassName } from './colours.ts';
import { dziSource, type TileFormat } from './dzi.ts';
import type { SlideHeatmap } from './heatmap.ts';
import { gradeLabel } from './colours.ts';
import { VIEWER_CSS, VIEWER_SCRIPT } from './viewerClient.ts';

/** What the page knows of one slide before its tiles' scores load. */
export interface ViewerSlideInfo {
  index: number;
  id: string;
  width: number;
  height: number;
  /** Microns per level-0 pixel, for the scale bar; null when the slide does not say. */
  mpp: number | null;
  source: ReturnType<typeof dziSource>;
  summary: {
    /** Null when the slide had no tile to score. */
    pred: string | null;
    reference: string | null;
    uncertainty: number;
    oodFlag: boolean | null;
    priority: number;
    /** A pattern model's slide: its Gleason score and the share of tissue in each pattern, as a line. */
    patterns?: string;
  } | null;
  overlays: Record<string, string>;
  /** The grade overlay's legend: what a tile's colour means (tile scores, not a case-level grade). */
  legend: { label: string; colour: string }[];
  legendNote: string;
}

export function slideInfo(
  index: number,
  id: string,
  size: { width: number; height: number; mpp?: number },
  format: TileFormat,
  heatmap?: SlideHeatmap,
): ViewerSlideInfo {
  const legend = heatmap
    ? tileClasses(heatmap).map((c) => ({ label: tileClassName(heatmap, c), colour: hex(tileClassColour(heatmap, c)) }))
    : [];
  const patterns = heatmap?.slidePrediction?.patterns;
  return {
    index,
    id,
    width: size.width,
    height: size.height,
    mpp: size.mpp ?? heatmap?.slide.mpp ?? null,
    source: dziSource(`slides/${index}_files/`, size.width, size.height, format),
    summary: heatmap
      ? {
          pred: heatmap.slidePrediction && gradeLabel(heatmap.classes, heatmap.slidePrediction.pred),
          reference: heatmap.reference === null ? null : gradeLabel(heatmap.classes, heatmap.reference),
          uncertainty: heatmap.slidePrediction?.uncertainty ?? 1,
          oodFlag: heatmap.slidePrediction?.oodFlag ?? null,
          priority: heatmap.referralPriority,
          ...(patterns ? { patterns: patternLine(heatmap.slidePrediction!.gleason!, patterns) } : {}),
        }
      : null,
    overlays: Object.fromEntries(Object.entries(heatmap?.overlays ?? {}).map(([k2, f]) => [k2, `slides/${index}/${f}`])),
    legend,
    legendNote: !heatmap
      ? ''
      : patterns
        ? "Each tile is coloured by its most probable Gleason pattern. The slide's grade comes from the patterns' areas by the ISUP rules."
        : 'Each tile is coloured by the grade its own score points to. A tile score is not a grade: the grade belongs to the whole case.',
  };
}

/** "Gleason 3+4: benign 62%, pattern 3 25%, 4 13%, 5 0%": what a pathologist reads of a biopsy. */
export function patternLine(gleason: string, a: { benign: number; g3: number; g4: number; g5: number }): string {
  const p = (v: number) => `${Math.round(100 * v)}%`;
  return `Gleason ${gleason}: benign ${p(a.benign)}, pattern 3 ${p(a.g3)}, 4 ${p(a.g4)}, 5 ${p(a.g5)}`;
}

/**
 * JSON for a script file: every character that could end a script element or be read as markup is
 * escaped, so no value (slide ids come from file names and manifests) can leave its string.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** data.js: the slide list, loaded with a script tag so the page also works from file://. */
export function dataScript(slides: ViewerSlideInfo[]): string {
  const ramp = [0, 0.25, 0.5, 0.75, 1].map((t) => hex(rampColour(t)));
  const truthLegend = MASK_LEGEND.map((l) => ({ label: l.label, colour: hex(l.colour) }));
  return `window.GRADELAB = ${scriptJson({ slides, ramp, truthLegend })};\n`;
}

/** slides/<i>/tiles.js: one slide's tile scores, loaded when the slide is opened. */
export function tilesScript(index: number, h: SlideHeatmap): string {
  // A pattern head's tiles are shown by their four patterns, not the grade classes they are stored in.
  const shown = tileClasses(h);
  const round = (p: number) => Math.round(p * 1e4) / 1e4;
  const tiles = h.tiles.map((t) => [t.x, t.y, shown.map((c) => round(t.probs[c])), shown.indexOf(t.pred), t.ood, t.oodFlag, t.attention]);
  const classes = shown.map((c) => tileClassName(h, c));
  return `window.GRADELAB_TILES = window.GRADELAB_TILES || {};\nwindow.GRADELAB_TILES[${index}] = ${scriptJson({ span: h.tileSpan, classes, tiles })};\n`;
}

/**
 * The page's Content-Security-Policy: scripts only from the viewer's own files (no inline script, no
 * eval), images from itself (tiles, overlays) and the canvases OpenSeadragon draws. Inline styles are
 * allowed because OpenSeadragon writes a style element of its own; no data ever reaches a style.
 */
export const VIEWER_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'";

/** The server adds what a meta element cannot carry: no framing by other sites. */
export const VIEWER_CSP_HEADER = `${VIEWER_CSP}; frame-ancestors 'none'`;

/** The static files of the viewer besides the slide data: the page, its script and its style. */
export function viewerFiles(title: string): Record<'index.html' | 'viewer.js' | 'viewer.css', string> {
  return { 'index.html': viewerPage(title), 'viewer.js': VIEWER_SCRIPT, 'viewer.css': VIEWER_CSS };
}

/** The viewer page: markup only; its behaviour is viewer.js, its data data.js (both set as text, never parsed as HTML). */
export function viewerPage(title: string): string {
  const safeTitle = title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${VIEWER_CSP}">
<meta name="referrer" content="no-referrer">
<title>${safeTitle}</title>
<link rel="stylesheet" href="viewer.css">
</head><body>
<div id="list"></div>
<div id="main"><div id="bar"><b id="title"></b>
<label>overlay <select id="overlay"><option value="none">none</option></select></label>
<label>opacity <input id="opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label>
<span id="magnification"></span></div><div id="osd"></div>
<div id="scalebar"><div id="scaleline"></div><span id="scalelabel"></span></div></div>
<div id="side"><h3>Legend</h3><div id="legend"></div><h3>Tile</h3><div id="info">Click a tile.</div></div>
<script src="openseadragon/openseadragon.min.js"></script>
<script src="data.js"></script>
<script src="viewer.js"></script>
</body></html>
`;
}
