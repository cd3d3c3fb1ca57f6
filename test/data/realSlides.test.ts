import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GradelabError } from '../../src/core/index.ts';
import { openSlide } from '../../src/data/index.ts';
import sharp from 'sharp';
import { maxAbsDiff, tempDir, missingTool } from '../helpers.ts';

/**
 * Real slide files from other projects' test suites (../shared/fixtures/slides, SOURCES.tsv says where
 * each comes from): each is read pixel for pixel as OpenSlide reads it, or refused at open with one
 * line, and no refused open leaves a file handle behind.
 */
const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/slides/', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const hasFixtures = existsSync(join(FIXTURES, 'SOURCES.tsv'));
const dir = tempDir();
const hasOpenSlide = spawnSync('/usr/bin/python3', ['-c', 'import openslide'], { stdio: 'ignore' }).status === 0;

const READABLE = ['osp_small.svs', 'cog_big_cog.tiff', 'cog_rgba8_cog.tiff', 'osp_boxes.tiff'];
const REFUSED: Record<string, RegExp> = {
  'osp_unopenable.tiff': /unsupported compression code 52479 in directory 0$/,
  'vips_ojpeg-tile.tif': /unsupported compression old-style JPEG in directory 0$/,
  'vips_multi-channel-z-series.ome.tif': /OME-TIFF with 3 channels, 5 z-planes and 1 time point: gradelab reads brightfield RGB slides$/,
  'osp_boxes_0.dcm': /DICOM whole-slide images are not supported: convert the series to a pyramidal TIFF first/,
};

const openFds = () => readdirSync('/proc/self/fd').length;

/** A whole level as OpenSlide reads it (RGB), from (0, 0): an aligned origin at every level. */
function openslideLevel(path: string, level: number): Uint8Array {
  const script =
    'import sys, openslide\ns = openslide.OpenSlide(sys.argv[1]); l = int(sys.argv[2])\nsys.stdout.buffer.write(s.read_region((0, 0), l, s.level_dimensions[l]).convert("RGB").tobytes())';
  return new Uint8Array(
    execFileSync('/usr/bin/python3', ['-c', script, path, String(level)], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }),
  );
}

describe.skipIf(missingTool(hasFixtures))('real slide files (../shared/fixtures/slides)', () => {
  it('every file there is either one this test reads or one it expects refused', () => {
    const files = readdirSync(FIXTURES).filter((f) => f !== 'SOURCES.tsv');
    expect(files.sort()).toEqual([...READABLE, ...Object.keys(REFUSED), 'cog_sparse.tiff', 'osp_unreadable.svs'].sort());
  });

  it.skipIf(missingTool(hasOpenSlide))(
    'Aperio JPEG, uncompressed BigTIFF, Zstandard RGBA and Deflate pyramids: every level pixel-identical to OpenSlide',
    async () => {
      for (const name of READABLE) {
        const slide = await openSlide(join(FIXTURES, name));
        try {
          for (let level = 0; level < slide.levels.length; level++) {
            const { width, height } = slide.levels[level];
            const got = (await slide.readRegion(level, 0, 0, width, height)).data;
            expect(maxAbsDiff(got, openslideLevel(join(FIXTURES, name), level)), `${name} level ${level}`).toBe(0);
          }
        } finally {
          await slide.close();
        }
      }
    },
  );

  it.skipIf(missingTool(hasOpenSlide))(
    'every other compression slide info accepts decodes: libvips-written LZW, PackBits, Deflate (with predictor), WebP and uncompressed pyramids match OpenSlide at every level',
    async () => {
      const [w, h] = [700, 500];
      const data = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) data.set([(x * 3 + y) & 255, (x ^ y) & 255, 200 + Math.round(40 * Math.sin(x / 20))], (y * w + x) * 3);
      }
      for (const [compression, extra] of [
        ['lzw', { predictor: 'horizontal' }],
        ['packbits', {}],
        ['deflate', { predictor: 'horizontal' }],
        ['webp', {}],
        ['none', {}],
      ] as const) {
        const path = join(dir, `pyramid-${compression}.tiff`);
        await sharp(data, { raw: { width: w, height: h, channels: 3 } })
          .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression, ...extra })
          .toFile(path);
        const slide = await openSlide(path);
        try {
          for (let level = 0; level < slide.levels.length; level++) {
            const { width, height } = slide.levels[level];
            const got = (await slide.readRegion(level, 0, 0, width, height)).data;
            expect(maxAbsDiff(got, openslideLevel(path, level)), `${compression} level ${level}`).toBe(0);
          }
        } finally {
          await slide.close();
        }
      }
    },
  );

  it('sparse tiles (stored with zero bytes) read as white background at every level', async () => {
    const slide = await openSlide(join(FIXTURES, 'cog_sparse.tiff'));
    try {
      expect(slide.levels.map((l) => l.width)).toEqual([20480, 10240, 5120, 2048, 1024, 512]);
      for (const [level, x, y] of [
        [0, 0, 0],
        [0, 10_000, 7_000],
        [3, 4000, 4000],
        [5, 0, 0],
      ]) {
        const region = await slide.readRegion(level, x, y, 300, 200);
        expect(
          region.data.every((v) => v === 255),
          `level ${level}`,
        ).toBe(true);
      }
    } finally {
      await slide.close();
    }
  });

  it('a corrupt JPEG tile opens, and reading it is one line naming the tile', async () => {
    const slide = await openSlide(join(FIXTURES, 'osp_unreadable.svs'));
    try {
      await expect(slide.readRegion(0, 0, 0, 16, 16)).rejects.toThrow(
        /osp_unreadable\.svs: cannot decode JPEG tile 0 of level 0 \(directory 0\): Bogus marker length$/,
      );
    } finally {
      await slide.close();
    }
  });

  it('refused at open with one line, as a user error (exit 2), and without leaking the file handle', async () => {
    for (const [name, pattern] of Object.entries(REFUSED)) {
      const before = openFds();
      for (let i = 0; i < 20; i++) {
        const err = await openSlide(join(FIXTURES, name)).then(
          () => undefined,
          (e) => e,
        );
        expect(err, name).toBeInstanceOf(GradelabError);
        expect(err.userError).toBe(true);
        expect(err.message).toMatch(pattern);
        expect(err.message.split('\n')).toHaveLength(1);
      }
      expect(openFds(), `${name}: open descriptors`).toBe(before);
    }
  });

  it('slide info --json reports mpp x and y and the vendor properties, as OpenSlide names them', () => {
    const r = spawnSync(process.execPath, [bin, 'slide', 'info', join(FIXTURES, 'osp_small.svs'), '--json'], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect([info.mppX, info.mppY]).toEqual([0.499, 0.499]);
    expect(info.properties).toMatchObject({
      'openslide.vendor': 'aperio',
      'aperio.MPP': '0.4990',
      'aperio.AppMag': '20',
      'openslide.level[0].width': '16',
    });
    expect(info.properties['tiff.ImageDescription']).toMatch(/^Aperio Image Library/);
  });

  it('a region over the per-read limit is exit 2 and one line, never a writer error', () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'slide',
        'region',
        join(FIXTURES, 'cog_sparse.tiff'),
        '-x',
        '0',
        '-y',
        '0',
        '--width',
        '16384',
        '--height',
        '16384',
        '--out',
        '/tmp/never.png',
      ],
      { encoding: 'utf8', timeout: 600_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/region 16384x16384 is larger than the 100000000 pixel limit per read/);
    expect(existsSync('/tmp/never.png')).toBe(false);
  });
});
