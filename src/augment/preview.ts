import sharp from 'sharp';
import { createRng, type RgbImage } from '../core/index.ts';
import { buildPipeline, type Pipeline } from './pipeline.ts';
import { transformFromSpec, transformRegistry } from './transform.ts';

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export interface Cell {
  image: RgbImage;
  label: string;
}

/**
 * A contact sheet: cells in rows of `columns`, each with its label underneath, on a light grey page,
 * encoded as PNG. Labels are SVG text rendered by librsvg (DejaVu Sans where installed).
 */
export async function contactSheet(
  cells: Cell[],
  columns: number,
  options: { rowLabels?: string[]; title?: string } = {},
): Promise<Buffer> {
  const cw = Math.max(...cells.map((c) => c.image.width));
  const ch = Math.max(...cells.map((c) => c.image.height));
  const pad = 8;
  const labelH = 18;
  const left = options.rowLabels ? 140 : 0;
  const top = options.title ? 28 : 0;
  const rows = Math.ceil(cells.length / columns);
  const width = left + pad + columns * (cw + pad);
  const height = top + pad + rows * (ch + labelH + pad);
  const composites: sharp.OverlayOptions[] = [];
  const texts: string[] = [];
  cells.forEach((cell, i) => {
    const x = left + pad + (i % columns) * (cw + pad);
    const y = top + pad + Math.floor(i / columns) * (ch + labelH + pad);
    composites.push({
      input: Buffer.from(cell.image.data),
      raw: { width: cell.image.width, height: cell.image.height, channels: 3 },
      left: x,
      top: y,
    });
    texts.push(`<text x="${x + cw / 2}" y="${y + ch + 13}" text-anchor="middle">${escapeXml(cell.label)}</text>`);
  });
  options.rowLabels?.forEach((label, r) => {
    const y = top + pad + r * (ch + labelH + pad) + ch / 2;
    texts.push(`<text x="${left - 4}" y="${y}" text-anchor="end">${escapeXml(label)}</text>`);
  });
  if (options.title) texts.push(`<text x="${pad}" y="20" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><style>text{font-family:'DejaVu Sans',sans-serif;font-size:11px;fill:#222}</style>${texts.join('')}</svg>`;
  composites.push({ input: Buffer.from(svg), left: 0, top: 0 });
  return sharp({ create: { width, height, channels: 3, background: { r: 240, g: 240, b: 240 } } })
    .composite(composites)
    .png()
    .toBuffer();
}

/** n draws of a pipeline on one image (the original first), seeds seed..seed+n-1. */
export async function previewPipeline(pipeline: Pipeline, image: RgbImage, n: number, seed: number): Promise<Cell[]> {
  const cells: Cell[] = [{ image, label: 'original' }];
  for (let i = 0; i < n; i++) cells.push({ image: await pipeline.apply(image, createRng(seed + i)), label: `seed ${seed + i}` });
  return cells;
}

/**
 * Each corruption or artifact of a pipeline (or, without one, every registered corruption and
 * artifact) at severities 1..5 beside the clean image; one seed for a whole row so severities differ
 * only by severity.
 */
export async function severityGrid(spec: unknown, image: RgbImage, seed: number): Promise<{ cells: Cell[]; rowLabels: string[] }> {
  const names =
    Array.isArray(spec) && spec.length
      ? buildPipeline(spec)
          .steps.flatMap((s) => s.choices.map((c) => c.name))
          .filter((n) => transformRegistry.get(n).severities)
      : transformRegistry.names().filter((n) => transformRegistry.get(n).severities);
  const cells: Cell[] = [];
  for (const name of names) {
    cells.push({ image, label: 'clean' });
    for (let s = 1; s <= 5; s++)
      cells.push({ image: await transformFromSpec({ name, severity: s }).apply(image, createRng(seed)), label: `severity ${s}` });
  }
  return { cells, rowLabels: names };
}
