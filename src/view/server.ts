import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { GradelabError, InputError } from '../core/index.ts';
import type { SlideSource } from '../data/index.ts';
import { dziTile, type TileFormat } from './dzi.ts';
import type { SlideHeatmap } from './heatmap.ts';
import { dataScript, slideInfo, tilesScript, VIEWER_CSP_HEADER, viewerFiles } from './page.ts';

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

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '::1', '[::1]'];

/**
 * The Host names a request may carry: the address the server listens on (and localhost's names for a
 * loopback address). Anything else is a page on another site reaching this port through DNS rebinding.
 * An unspecified address (0.0.0.0, ::) serves every name it is reached by, as the user asked.
 */
export function allowedHostNames(host: string): Set<string> | undefined {
  if (host === '0.0.0.0' || host === '::') return undefined;
  const bare = host.replace(/^\[|\]$/g, '');
  if (LOOPBACK_NAMES.includes(host) || LOOPBACK_NAMES.includes(bare)) return new Set(LOOPBACK_NAMES);
  return new Set([bare, `[${bare}]`]);
}

/** The host name and port of a Host header ("127.0.0.1:8765", "[::1]:8765", "localhost"). */
function parseHostHeader(value: string | undefined): { name: string; port?: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value ?? '');
  return m ? { name: m[1].toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) } : undefined;
}

/**
 * The viewer's HTTP server (fastify). It serves only the slides named when it started, by index, so no
 * part of a URL reaches the file system: every route checks its parameters against a pattern, and
 * levels, tiles and files outside what exists get 404 (bad parameters 400), never a crash.
 */
export async function createViewerServer(
  slides: ViewerSlide[],
  options: { format?: TileFormat; title?: string; host?: string } = {},
): Promise<FastifyInstance> {
  const format = options.format ?? 'jpeg';
  const app = Fastify({ logger: false, bodyLimit: 1024, routerOptions: { maxParamLength: 64 }, requestTimeout: 60_000 });
  const infos = slides.map((s, i) =>
    slideInfo(i, s.slide.id, { width: s.slide.levels[0].width, height: s.slide.levels[0].height, mpp: s.slide.mpp }, format, s.heatmap),
  );
  const files = viewerFiles(options.title ?? 'gradelab viewer');
  const data = dataScript(infos);
  const allowed = allowedHostNames(options.host ?? '127.0.0.1');
  app.addHook('onRequest', async (req, reply) => {
    const h = parseHostHeader(req.headers.host);
    const port = (app.server.address() as { port?: number } | null)?.port;
    if (allowed && (!h || !allowed.has(h.name) || (port !== undefined && h.port !== undefined && h.port !== port)))
      return reply.code(421).type('text/plain').send('this viewer answers only to the address it listens on');
    reply
      .header('content-security-policy', VIEWER_CSP_HEADER)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
  });
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
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(files['index.html']));
  app.get('/index.html', async (_req, reply) => reply.type('text/html; charset=utf-8').send(files['index.html']));
  app.get('/viewer.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(files['viewer.js']));
  app.get('/viewer.css', async (_req, reply) => reply.type('text/css; charset=utf-8').send(files['viewer.css']));
  app.get('/data.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(data));
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
    if (name === 'tiles.js') return reply.type('text/javascript; charset=utf-8').send(tilesScript(i!, s.heatmap));
    // Only the overlay files the heatmap lists, by name.
    if (!Object.values(s.heatmap.overlays).includes(name) && name !== s.heatmap.thumbnail.file) return reply.code(404).send('not found');
    return reply.type(imageType(name)).send(await readFile(join(s.heatmapDir, name)));
  });
  return app;
}

function imageType(name: string): string {
  return /\.jpe?g$/i.test(name) ? 'image/jpeg' : 'image/png';
}

/** Starts the viewer; a port in use is the user's to change (one line, exit 2). */
export async function startViewer(
  slides: ViewerSlide[],
  options: { host?: string; port?: number; format?: TileFormat; title?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const host = options.host ?? '127.0.0.1';
  const app = await createViewerServer(slides, { ...options, host });
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
