import { get } from 'node:http';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createViewerServer, dziLevels, dziTile, startViewer } from '../../src/view/index.ts';
import { createRng } from '../../src/core/index.ts';
import { tempDir } from '../helpers.ts';
import { slideWithHeatmap } from './helpers.ts';

const dir = tempDir();
let app: FastifyInstance;
let made: Awaited<ReturnType<typeof slideWithHeatmap>>;

beforeAll(async () => {
  made = await slideWithHeatmap(dir);
  app = await createViewerServer([{ slide: made.slide, heatmap: made.heatmap, heatmapDir: made.heatmapDir }], { format: 'png' });
});
afterAll(async () => {
  await app?.close();
  await made?.slide.close();
});

describe('viewer server', () => {
  it('serves Deep Zoom tiles made from the slide reader', async () => {
    const { max } = dziLevels(1000, 700);
    expect(max).toBe(10);
    const r = await app.inject({ method: 'GET', url: '/slides/0_files/10/1_0.png' });
    expect(r.statusCode).toBe(200);
    const { data, info } = await sharp(r.rawPayload).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);
    // Level 10 is full resolution: the tile is the slide's region (256, 0) exactly.
    const region = await made.slide.readRegion(0, 256, 0, 256, 256);
    expect(Buffer.compare(data, Buffer.from(region.data))).toBe(0);
    // Level 9 halves the slide: 500 x 350 in two tiles across.
    const half = await sharp(await dziTile(made.slide, 9, 1, 1, 'png')).metadata();
    expect([half.width, half.height]).toEqual([500 - 256, 350 - 256]);
  });

  it('serves the page, the data, OpenSeadragon and the overlays it lists; nothing else', async () => {
    expect((await app.inject('/')).body).toContain('openseadragon/openseadragon.min.js');
    expect((await app.inject('/data.js')).body).toMatch(/^window\.GRADELAB = /);
    expect((await app.inject('/openseadragon/openseadragon.min.js')).statusCode).toBe(200);
    expect((await app.inject('/slides/0/grade.png')).statusCode).toBe(200);
    expect((await app.inject('/slides/0/tiles.js')).body).toContain('window.GRADELAB_TILES[0]');
    for (const url of [
      '/slides/0/heatmap.json',
      '/slides/0/..%2F..%2Fetc%2Fpasswd',
      '/openseadragon/../../package.json',
      '/slides/1_files/0/0_0.png',
      '/slides/0_files/11/0_0.png',
      '/slides/0_files/10/4_0.png',
      '/slides/0_files/10/0_0.jpeg',
    ]) {
      expect((await app.inject(url)).statusCode, url).toBeGreaterThanOrEqual(400);
    }
  });

  it('answers hundreds of malformed requests with 4xx and keeps serving', async () => {
    const rng = createRng('malformed');
    const junk = () => Array.from({ length: 1 + rng.int(40) }, () => String.fromCharCode(33 + rng.int(94))).join('');
    const urls = [
      ...Array.from({ length: 150 }, () => `/slides/${junk()}`),
      ...Array.from({ length: 60 }, () => `/slides/0_files/${rng.int(100) - 50}/${rng.int(1e9)}_${junk()}.png`),
      ...Array.from({ length: 40 }, () => `/openseadragon/${junk()}`),
      '/slides/0_files/99999999999999999999/0_0.png',
      `/slides/${'9'.repeat(5000)}/x`,
      '/%',
      '/slides/%E0%A4%A',
    ];
    for (const url of urls) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, url).toBeLessThan(500);
    }
    for (const method of ['POST', 'PUT', 'DELETE'] as const)
      expect((await app.inject({ method, url: '/', payload: 'x'.repeat(5000) })).statusCode).toBeGreaterThanOrEqual(400);
    expect((await app.inject('/slides/0_files/10/0_0.png')).statusCode).toBe(200);
  });

  it('answers only to its own host names (DNS rebinding), with a CSP, and the right content types', async () => {
    const page = await app.inject({ url: '/', headers: { host: '127.0.0.1:8765' } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    // No inline script: the page's own CSP would block it.
    expect(page.body).not.toMatch(/<script>[^<]/);
    for (const host of ['localhost', 'localhost:8765', '[::1]:8765'])
      expect((await app.inject({ url: '/data.js', headers: { host } })).statusCode, host).toBe(200);
    for (const host of ['evil.example', 'evil.example:8765', '127.0.0.1.evil.example', '10.0.0.7:8765'])
      expect((await app.inject({ url: '/data.js', headers: { host } })).statusCode, host).toBe(421);
    const thumb = await app.inject('/slides/0/thumbnail.jpg');
    expect(thumb.headers['content-type']).toBe('image/jpeg');
    expect((await app.inject('/slides/0/grade.png')).headers['content-type']).toBe('image/png');
    expect((await app.inject('/viewer.js')).headers['content-type']).toMatch(/^text\/javascript/);
  });

  it('a listening server checks the port of the Host header as well', async () => {
    const s = await startViewer([{ slide: made.slide }], { port: 0 });
    try {
      const port = Number(new URL(s.url).port);
      const status = (host: string) =>
        new Promise<number>((resolve, reject) =>
          get({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject),
        );
      expect(await status(`127.0.0.1:${port}`)).toBe(200);
      expect(await status(`localhost:${port}`)).toBe(200);
      expect(await status(`127.0.0.1:${port + 1}`)).toBe(421);
      expect(await status(`attacker.example:${port}`)).toBe(421);
    } finally {
      await s.close();
    }
  });

  it('listens on 127.0.0.1 by default, and a port in use is a one-line user error', async () => {
    const first = await startViewer([{ slide: made.slide }], { port: 0 });
    try {
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const port = Number(new URL(first.url).port);
      await expect(startViewer([{ slide: made.slide }], { port })).rejects.toThrow(
        new RegExp(`^port ${port} on 127.0.0.1 is in use: choose another with --port$`),
      );
    } finally {
      await first.close();
    }
  });
});
