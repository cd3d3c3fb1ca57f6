import { mkdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { InputError, loadJsonFile, writeFileAtomic, type RgbImage } from '../core/index.ts';
import { gradeLabel, maskValueColour, rampColour, tileClassColour } from './colours.ts';

/** One tile's opinion: where it lies (level-0 pixels) and what the model and its detectors say. */
export interface HeatmapTile {
  x: number;
  y: number;
  probs: number[];
  pred: number;
  /** Probability-weighted grade (class index scale). */
  expected: number;
  ood: number | null;
  oodFlag: boolean | null;
  attention: number | null;
}

export interface SlideHeatmap {
  format: 'gradelab-heatmap/1';
  slide: { id: string; path: string; width: number; height: number; mpp: number | null };
  model: { dir: string; task: string; head: string; weightsSha256: string | null };
  classes: number[];
  /** Level-0 pixels each tile covers (square). */
  tileSpan: number;
  tiles: HeatmapTile[];
  /** Null when no tile had enough tissue to score: the model has no opinion of the slide. */
  slidePrediction: {
    pred: number;
    probs: number[];
    uncertainty: number;
    oodScore: number | null;
    oodFlag: boolean | null;
    /** A pattern model's Gleason score and the share of the slide's tissue in each pattern. */
    gleason?: string;
    patterns?: { benign: number; g3: number; g4: number; g5: number };
  } | null;
  /** The reference grade (class index) from a manifest, when known. */
  reference: number | null;
  /** Inside the model's intended use (its training scanners, no OOD flag), or the reasons it is not. */
  scope?: { inScope: boolean; reasons: string[] };
  /** Higher first in the viewer: discordant with the reference, OOD-flagged, uncertain. */
  referralPriority: number;
  thumbnail: { file: string; width: number; height: number; downsample: number };
  overlays: Record<string, string>;
}

const heatmapSchema = z
  .object({
    format: z.literal('gradelab-heatmap/1'),
    slide: z.object({
      id: z.string(),
      path: z.string(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      mpp: z.number().nullable(),
    }),
    model: z.object({ dir: z.string(), task: z.string(), head: z.string(), weightsSha256: z.string().nullable() }),
    classes: z.array(z.number()),
    tileSpan: z.number().positive(),
    tiles: z.array(
      z.object({
        x: z.number(),
        y: z.number(),
        probs: z.array(z.number()),
        pred: z.number().int(),
        expected: z.number(),
        ood: z.number().nullable(),
        oodFlag: z.boolean().nullable(),
        attention: z.number().nullable(),
      }),
    ),
    slidePrediction: z
      .object({
        pred: z.number().int(),
        probs: z.array(z.number()),
        uncertainty: z.number(),
        oodScore: z.number().nullable(),
        oodFlag: z.boolean().nullable(),
        gleason: z.string().optional(),
        patterns: z.object({ benign: z.number(), g3: z.number(), g4: z.number(), g5: z.number() }).strict().optional(),
      })
      .nullable(),
    reference: z.number().int().nullable(),
    /** Whether the slide is inside the model's intended use, and why not (heatmaps before 0.2 lack it). */
    scope: z.object({ inScope: z.boolean(), reasons: z.array(z.string()) }).optional(),
    referralPriority: z.number(),
    thumbnail: z.object({ file: z.string(), width: z.number().int(), height: z.number().int(), downsample: z.number() }),
    overlays: z.record(z.string(), z.string()),
  })
  .strict();

export const HEATMAP_FILE = 'heatmap.json';

/** Reads a heatmap; its slide path (stored relative to the heatmap's folder) comes back usable from here. */
export function loadHeatmap(dir: string): SlideHeatmap {
  const h = loadJsonFile(join(dir, HEATMAP_FILE), heatmapSchema, 'gradelab heatmap') as SlideHeatmap;
  return { ...h, slide: { ...h.slide, path: isAbsolute(h.slide.path) ? h.slide.path : join(dir, h.slide.path) } };
}

/** Above any scored slide (at most 10 x 5 + 5 + 1): a slide the model could not read needs a person first. */
export const UNSCORED_PRIORITY = 100;

/**
 * The order in which a reviewer should look at slides: unscored slides first, then a prediction that
 * disagrees with the reference (by how far), then slides flagged out-of-distribution, then by
 * uncertainty (1 - top probability).
 */
export function referralPriority(pred: number | null, reference: number | null, oodFlag: boolean | null, uncertainty: number): number {
  if (pred === null) return UNSCORED_PRIORITY;
  const discordance = reference === null ? 0 : Math.abs(pred - reference);
  return 10 * discordance + (oodFlag ? 5 : 0) + uncertainty;
}

type Paint = (t: HeatmapTile) => [number, number, number, number] | undefined;

/** An RGBA overlay at thumbnail resolution: each tile's footprint in its colour, transparent elsewhere. */
export function paintOverlay(
  h: Pick<SlideHeatmap, 'tiles' | 'tileSpan'>,
  width: number,
  height: number,
  downsample: number,
  paint: Paint,
): Uint8Array {
  const out = new Uint8Array(width * height * 4);
  for (const t of h.tiles) {
    const c = paint(t);
    if (!c) continue;
    const x0 = Math.max(0, Math.floor(t.x / downsample));
    const y0 = Math.max(0, Math.floor(t.y / downsample));
    const x1 = Math.min(width, Math.ceil((t.x + h.tileSpan) / downsample));
    const y1 = Math.min(height, Math.ceil((t.y + h.tileSpan) / downsample));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.set(c, (y * width + x) * 4);
  }
  return out;
}

async function writeRgbaPng(path: string, data: Uint8Array, width: number, height: number): Promise<void> {
  await writeFileAtomic(
    path,
    await sharp(data, { raw: { width, height, channels: 4 } })
      .png()
      .toBuffer(),
  );
}

/** A mask image (one value per pixel, first channel) painted in colours, transparent where `colour` says. */
export function paintMask(mask: RgbImage, colour: (v: number) => [number, number, number, number] | undefined): Uint8Array {
  const out = new Uint8Array(mask.width * mask.height * 4);
  for (let p = 0; p < mask.width * mask.height; p++) {
    const c = colour(mask.data[p * 3]);
    if (c) out.set(c, p * 4);
  }
  return out;
}

export interface HeatmapImages {
  thumbnail: RgbImage;
  downsample: number;
  /** Tissue mask at thumbnail resolution (1 = tissue). */
  tissue?: { width: number; height: number; data: Uint8Array };
  /** The label mask at thumbnail resolution (synthetic slides: PANDA Radboud values, 6 = anomaly). */
  truth?: RgbImage;
}

/**
 * Writes a slide's heatmap: heatmap.json (every tile's probabilities, grade, OOD score and flag, attention)
 * and PNG overlays at the thumbnail's resolution (grade, OOD, attention, tissue, truth) with the thumbnail.
 */
export async function writeHeatmap(
  dir: string,
  heatmap: Omit<SlideHeatmap, 'thumbnail' | 'overlays'>,
  images: HeatmapImages,
): Promise<SlideHeatmap> {
  await mkdir(dir, { recursive: true });
  const { width, height } = images.thumbnail;
  const d = images.downsample;
  const overlays: Record<string, string> = {};
  const write = async (name: string, data: Uint8Array) => {
    await writeRgbaPng(join(dir, `${name}.png`), data, width, height);
    overlays[name] = `${name}.png`;
  };
  await write(
    'grade',
    paintOverlay(heatmap, width, height, d, (t) => [...tileClassColour(heatmap, t.pred), 255]),
  );
  const scores = heatmap.tiles.map((t) => t.ood).filter((s): s is number => s !== null);
  if (scores.length) {
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    await write(
      'ood',
      paintOverlay(heatmap, width, height, d, (t) =>
        t.ood === null ? undefined : t.oodFlag ? [230, 0, 230, 255] : [...rampColour(hi > lo ? (t.ood - lo) / (hi - lo) : 0), 255],
      ),
    );
  }
  const att = heatmap.tiles.map((t) => t.attention ?? 0);
  if (heatmap.tiles.some((t) => t.attention !== null)) {
    const top = Math.max(...att, 1e-12);
    await write(
      'attention',
      paintOverlay(heatmap, width, height, d, (t) => [...rampColour((t.attention ?? 0) / top), 255]),
    );
  }
  if (images.tissue) {
    const m = images.tissue;
    const rgba = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v =
          m.data[
            Math.min(m.height - 1, Math.floor((y * m.height) / height)) * m.width + Math.min(m.width - 1, Math.floor((x * m.width) / width))
          ];
        if (v) rgba.set([0, 200, 80, 255], (y * width + x) * 4);
      }
    }
    await write('tissue', rgba);
  }
  if (images.truth)
    await write(
      'truth',
      paintMask(images.truth, (v) => {
        const c = maskValueColour(v);
        return c && [...c, 255];
      }),
    );
  // A photograph of tissue: JPEG at 85 is a tenth of the PNG's size (68 kB against 682 kB at 1024 x 512).
  await writeFileAtomic(
    join(dir, 'thumbnail.jpg'),
    await sharp(images.thumbnail.data, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 85 })
      .toBuffer(),
  );
  const full: SlideHeatmap = { ...heatmap, thumbnail: { file: 'thumbnail.jpg', width, height, downsample: d }, overlays };
  // Last and whole: a slide whose heatmap.json exists is finished (a rerun or another process skips it).
  await writeFileAtomic(join(dir, HEATMAP_FILE), JSON.stringify(full));
  return full;
}

/** Checks that a heatmap belongs to the slide about to be shown with it. */
export function checkHeatmapFor(h: SlideHeatmap, dir: string, slide: { id: string; width: number; height: number }): void {
  if (h.slide.width !== slide.width || h.slide.height !== slide.height) {
    throw new InputError(
      `${join(dir, HEATMAP_FILE)}: made for ${h.slide.id} (${h.slide.width}x${h.slide.height}), not for ${slide.id} (${slide.width}x${slide.height}); run \`gradelab heatmap\` on this slide`,
    );
  }
}

export { gradeLabel };
