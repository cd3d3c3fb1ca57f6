import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { GradelabError, InputError } from '../core/index.ts';
import type { SlideSource } from '../data/index.ts';
import { dziTile, type TileFormat } from './dzi.ts';
import type { SlideHeatmap } from './heatmap.ts';
import { dataScript, slideInfo, tilesScript, viewerPage } from './page.ts';

/** A slide the viewer shows, with its heatmap (from `gradelab heatmap`) when there is one. */
export interface ViewerSlide {
  slide: SlideSource;
  heatmap?: SlideHeatmap;
  /** Folder of the heatmap's overlay images. */
  heatmapDir?: string;
}

/** OpenSeadragon's build folder (script and button images), served and exported as it ships. */
export const OSD_DIR = dirname(createRequire(import.meta.url).resolve('openseadragon'));

const SAFE_ASSET = /^(openseadragon\.min\.js|images\/[a-z_]+\.png)$/;

/**
 * The viewer's HTTP server (fastify). It serves only the slides named when it started, by index, so no
 * part of a URL reaches the file system: every route checks its parameters against a pattern, and
 * levels, tiles and files outside what exists get 404 (bad parameters 400), never a crash.
 */
export async function createViewerServer(
  slides: ViewerSlide[],
  options: { format?: TileFormat; title?: string } = {},
): Promise<FastifyInstance> {
  const format = options.format ?? 'jpeg';
  const app = Fastify({ logger: false, bodyLimit: 1024, routerOptions: { maxParamLength: 64 }, requestTimeout: 60_000 });
  const infos = slides.map((s, i) => slideInfo(i, s.slide.id, s.slide.levels[0].width, s.slide.levels[0].height, format, s.heatmap));
  const page = viewerPage(options.title ?? 'gradelab viewer');
  const data = dataScript(infos);
  const slideAt = (raw: string) => {
    const i = /^\d{1,6}$/.test(raw) ? Number(raw) : -1;
    return i >= 0 && i < slides.length ? i : undefined;
  };
  app.setErrorHandler((err, _req, reply) => {
    const status = err instanceof GradelabError && err.userError ? 404 : ((err as { statusCode?: number }).statusCode ?? 500);
    void reply
      .code(status >= 400 && status < 600 ? status : 500)
      .type('text/plain')
      .send(status === 500 ? 'internal error' : (err as Error).message);
  });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/index.html', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/data.js', async (_req, reply) => reply.type('text/javascript').send(data));
  app.get('/openseadragon/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    if (!SAFE_ASSET.test(rest)) return reply.code(404).send('not found');
    const body = await readFile(join(OSD_DIR, rest)).catch(() => undefined);
    if (!body) return reply.code(404).send('not found');
    return reply.type(rest.endsWith('.js') ? 'text/javascript' : 'image/png').send(body);
  });
  app.get('/slides/:dir/:level/:tile', async (req, reply) => {
    const { dir, level, tile } = req.params as Record<string, string>;
    const d = /^(\d{1,6})_files$/.exec(dir);
    const t = /^(\d{1,7})_(\d{1,7})\.(jpeg|png)$/.exec(tile);
    const i = d ? slideAt(d[1]) : undefined;
    if (i === undefined || !t || !/^\d{1,2}$/.test(level) || t[3] !== format) return reply.code(404).send('not found');
    const body = await dziTile(slides[i].slide, Number(level), Number(t[1]), Number(t[2]), format);
    return reply.type(`image/${format}`).header('cache-control', 'max-age=3600').send(body);
  });
  app.get('/slides/:index/:name', async (req, reply) => {
    const { index, name } = req.params as Record<string, string>;
    const i = slideAt(index);
    const s = i === undefined ? undefined : slides[i];
    if (!s?.heatmap || !s.heatmapDir) return reply.code(404).send('not found');
    if (name === 'tiles.js') return reply.type('text/javascript').send(tilesScript(i!, s.heatmap));
    // Only the overlay files the heatmap lists, by name.
    if (!Object.values(s.heatmap.overlays).includes(name) && name !== s.heatmap.thumbnail.file) return reply.code(404).send('not found');
    return reply.type('image/png').send(await readFile(join(s.heatmapDir, name)));
  });
  return app;
}

/** Starts the viewer; a port in use is the user's to change (one line, exit 2). */
export async function startViewer(
  slides: ViewerSlide[],
  options: { host?: string; port?: number; format?: TileFormat; title?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const app = await createViewerServer(slides, options);
  const host = options.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: options.port ?? 0 });
  } catch (err) {
    await app.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new InputError(`port ${options.port} on ${host} is in use: choose another with --port`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new InputError(`--host ${host}: not an address of this machine`);
    throw err;
  }
  const address = app.server.address() as { port: number };
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`, close: () => app.close() };
}
