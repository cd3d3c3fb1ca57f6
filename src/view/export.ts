import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, writeFileAtomic } from '../core/index.ts';
import { DZI_TILE, dziLevels, dziTile, type TileFormat } from './dzi.ts';
import { dataScript, slideInfo, tilesScript, viewerFiles } from './page.ts';
import { OSD_DIR, type ViewerSlide } from './server.ts';

/**
 * The viewer as static files that open from disk (file://), no server: index.html, data.js, the
 * OpenSeadragon build, each slide's full Deep Zoom pyramid, overlays and tile scores.
 */
export async function exportViewer(
  slides: ViewerSlide[],
  out: string,
  options: { format?: TileFormat; title?: string; onTile?: () => void } = {},
): Promise<{ tiles: number }> {
  const format = options.format ?? 'jpeg';
  await mkdir(join(out, 'slides'), { recursive: true });
  await cp(OSD_DIR, join(out, 'openseadragon'), { recursive: true });
  let tiles = 0;
  const infos = [];
  for (const [i, s] of slides.entries()) {
    const { width, height } = s.slide.levels[0];
    const dz = dziLevels(width, height);
    for (let level = 0; level <= dz.max; level++) {
      const size = dz.size(level);
      const dir = join(out, 'slides', `${i}_files`, String(level));
      await mkdir(dir, { recursive: true });
      for (let row = 0; row < Math.ceil(size.height / DZI_TILE); row++) {
        for (let col = 0; col < Math.ceil(size.width / DZI_TILE); col++) {
          await writeFile(join(dir, `${col}_${row}.${format}`), await dziTile(s.slide, level, col, row, format));
          tiles++;
          options.onTile?.();
        }
      }
    }
    if (s.heatmap && s.heatmapDir) {
      await mkdir(join(out, 'slides', String(i)), { recursive: true });
      for (const f of [...Object.values(s.heatmap.overlays), s.heatmap.thumbnail.file])
        await cp(join(s.heatmapDir, f), join(out, 'slides', String(i), f));
      await writeFile(join(out, 'slides', String(i), 'tiles.js'), tilesScript(i, s.heatmap));
    }
    infos.push(slideInfo(i, s.slide.id, { width, height, mpp: s.slide.mpp }, format, s.heatmap));
  }
  await writeFile(join(out, 'data.js'), dataScript(infos));
  const files = viewerFiles(options.title ?? 'gradelab viewer');
  await writeFile(join(out, 'viewer.js'), files['viewer.js']);
  await writeFile(join(out, 'viewer.css'), files['viewer.css']);
  // Last: a folder with index.html is a finished export.
  await writeFileAtomic(join(out, 'index.html'), files['index.html']);
  return { tiles };
}

/** Deep Zoom tiles a slide of this size has, over all levels (for a progress bar). */
export function dziTileCount(width: number, height: number): number {
  const dz = dziLevels(width, height);
  let n = 0;
  for (let level = 0; level <= dz.max; level++) {
    const s = dz.size(level);
    n += Math.ceil(s.width / DZI_TILE) * Math.ceil(s.height / DZI_TILE);
  }
  return n;
}

/** The slide ids a finished viewer export holds, in its order (their place in the page's #slide=). */
export function readViewerExport(dir: string): { page: string; slideIds: string[] } {
  const page = join(dir, 'index.html');
  const data = join(dir, 'data.js');
  if (!existsSync(page) || !existsSync(data))
    throw new InputError(`${dir}: not a viewer export (no index.html and data.js; write one with gradelab view --export)`);
  const text = readFileSync(data, 'utf8');
  const prefix = 'window.GRADELAB = ';
  let parsed: { slides?: { id?: unknown }[] };
  try {
    if (!text.startsWith(prefix)) throw new Error('unexpected start');
    parsed = JSON.parse(text.slice(prefix.length).trim().replace(/;$/, ''));
  } catch {
    throw new InputError(`${data}: not a gradelab viewer's data.js`);
  }
  if (!Array.isArray(parsed.slides) || parsed.slides.some((s) => typeof s?.id !== 'string'))
    throw new InputError(`${data}: no slide list in this viewer's data.js`);
  return { page, slideIds: parsed.slides.map((s) => s.id as string) };
}
