import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { openSlide, TileCache, type SlideSource } from '../../src/data/index.ts';
import { crop, maxAbsDiff, smoothImage, tempDir, missingTool } from '../helpers.ts';
import { writeJpegFile, writePng, writeSharpPyramid, writeTestSvs } from './fixtures.ts';

const dir = tempDir();
const W = 1300;
const H = 900;
const img = smoothImage(W, H);

/** Pixels of a TIFF page as libvips (libtiff + libjpeg) decodes them: the reference. */
async function libvipsPage(path: string, page: number) {
  const { data, info } = await sharp(path, { page }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

async function wholeLevel(s: SlideSource, level: number) {
  const l = s.levels[level];
  return s.readRegion(level, 0, 0, l.width, l.height);
}

describe('generic pyramidal TIFF (sharp/libvips)', () => {
  for (const bigtiff of [false, true]) {
    it(`${bigtiff ? 'BigTIFF' : 'TIFF'}: levels, mpp and pixels equal to libvips`, async () => {
      const path = join(dir, `pyr-${bigtiff}.tiff`);
      await writeSharpPyramid(path, img, { bigtiff, mpp: 0.5 });
      const s = await openSlide(path);
      expect(s.vendor).toBe('generic-tiff');
      expect(s.mpp).toBeCloseTo(0.5, 6);
      expect(s.levels.slice(0, 3).map((l) => [l.width, l.height])).toEqual([
        [1300, 900],
        [650, 450],
        [325, 225],
      ]);
      for (let i = 0; i < s.levels.length; i++) {
        const page = await libvipsPage(path, i);
        expect([s.levels[i].width, s.levels[i].height]).toEqual([page.width, page.height]);
      }
      expect(s.levels[1].downsample).toBeCloseTo(2, 6);
      for (const level of [0, 1, 2]) {
        const ref = await libvipsPage(path, level);
        expect(maxAbsDiff((await wholeLevel(s, level)).data, ref.data)).toBe(0);
      }
      // Against the original pixels: only JPEG loss.
      expect(maxAbsDiff((await s.readRegion(0, 300, 200, 400, 300)).data, crop(img, 300, 200, 400, 300))).toBeLessThanOrEqual(4);
      await s.close();
    });
  }

  it('reads LZW and Deflate tiled TIFFs through libtiff', async () => {
    for (const compression of ['lzw', 'deflate'] as const) {
      const path = join(dir, `pyr-${compression}.tiff`);
      await writeSharpPyramid(path, img, { compression });
      const s = await openSlide(path);
      expect(maxAbsDiff((await s.readRegion(0, 10, 20, 300, 200)).data, crop(img, 10, 20, 300, 200))).toBe(0);
      await s.close();
    }
  });

  it('level coordinates are level-0 pixels, as OpenSlide', async () => {
    const path = join(dir, 'pyr-false.tiff');
    const s = await openSlide(path);
    const ref = await libvipsPage(path, 1);
    const r = await s.readRegion(1, 200, 100, 50, 40);
    // level-0 (200, 100) is level-1 (100, 50)
    expect(maxAbsDiff(r.data, crop(ref, 100, 50, 50, 40))).toBe(0);
    await s.close();
  });

  it('pads regions crossing the edge with white and returns white outside the slide', async () => {
    const s = await openSlide(join(dir, 'pyr-false.tiff'));
    const r = await s.readRegion(0, W - 10, H - 5, 30, 20);
    const inside = crop(await libvipsPage(join(dir, 'pyr-false.tiff'), 0), W - 10, H - 5, 10, 5);
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 30; x++) {
        const p = (y * 30 + x) * 3;
        if (x < 10 && y < 5) expect(r.data[p]).toBe(inside[(y * 10 + x) * 3]);
        else expect([r.data[p], r.data[p + 1], r.data[p + 2]]).toEqual([255, 255, 255]);
      }
    }
    const outside = await s.readRegion(0, -500, -500, 20, 20);
    expect(outside.data.every((v) => v === 255)).toBe(true);
    const negative = await s.readRegion(0, -4, -3, 8, 8);
    expect([...negative.data.subarray(0, 3)]).toEqual([255, 255, 255]);
    expect(negative.data[(3 * 8 + 4) * 3]).toBe(inside.length ? (await libvipsPage(join(dir, 'pyr-false.tiff'), 0)).data[0] : 0);
    await s.close();
  });

  it('rejects bad levels and sizes with a clear error', async () => {
    const s = await openSlide(join(dir, 'pyr-false.tiff'));
    await expect(s.readRegion(99, 0, 0, 10, 10)).rejects.toThrow(/level 99 does not exist/);
    await expect(s.readRegion(0, 0, 0, 0, 10)).rejects.toThrow(/positive integers/);
    await expect(s.readRegion(0, 0, 0, 100000, 100000)).rejects.toThrow(/limit per read/);
    await s.close();
  });
});

describe('Aperio SVS', () => {
  for (const photometric of ['ycbcr', 'rgb'] as const) {
    it(`JPEG/${photometric}: levels, metadata, associated images and pixels`, async () => {
      const path = join(dir, `slide-${photometric}.svs`);
      await writeTestSvs(path, img, photometric);
      const s = await openSlide(path);
      expect(s.vendor).toBe('aperio');
      expect(s.mpp).toBeCloseTo(0.2527, 4);
      expect(s.objectivePower).toBe(40);
      // The thumbnail (directory 1) is not a level.
      expect(s.levels.map((l) => l.width)).toEqual([1300, 325, 81]);
      expect(s.associatedImages).toEqual(['thumbnail', 'label', 'macro']);
      const label = await s.readAssociatedImage('label');
      expect([label.width, label.height]).toEqual([60, 50]);
      expect(maxAbsDiff(label.data, smoothImage(60, 50, 7).data)).toBe(0);
      // Level pages are directories 0, 2, 3.
      for (const [level, page] of [
        [0, 0],
        [1, 2],
        [2, 3],
      ]) {
        expect(maxAbsDiff((await wholeLevel(s, level)).data, (await libvipsPage(path, page)).data)).toBe(0);
      }
      expect(maxAbsDiff((await s.readRegion(0, 500, 300, 256, 256)).data, crop(img, 500, 300, 256, 256))).toBeLessThanOrEqual(
        photometric === 'rgb' ? 3 : 6,
      );
      await expect(s.readAssociatedImage('overview')).rejects.toThrow(/no associated image "overview"/);
      await s.close();
    });
  }

  it('BigTIFF SVS', async () => {
    const path = join(dir, 'big.svs');
    await writeTestSvs(path, img, 'ycbcr', { bigTiff: true });
    const s = await openSlide(path);
    expect(s.levels).toHaveLength(3);
    expect(maxAbsDiff((await wholeLevel(s, 0)).data, (await libvipsPage(path, 0)).data)).toBe(0);
    await s.close();
  });
});

describe('single images', () => {
  it('PNG, JPEG and flat TIFF are one-level slides', async () => {
    const png = join(dir, 'patch.png');
    const jpg = join(dir, 'patch.jpg');
    const flat = join(dir, 'flat.tif');
    const small = smoothImage(300, 200);
    await writePng(png, small);
    await writeJpegFile(jpg, small);
    await writeSharpPyramid(flat, small, { tile: false, compression: 'lzw' });
    for (const [path, tol] of [
      [png, 0],
      [jpg, 4],
      [flat, 0],
    ] as const) {
      const s = await openSlide(path);
      expect(s.levels).toEqual([{ width: 300, height: 200, downsample: 1 }]);
      expect(maxAbsDiff((await s.readRegion(0, 20, 30, 100, 50)).data, crop(small, 20, 30, 100, 50))).toBeLessThanOrEqual(tol);
      await s.close();
    }
  });

  it('chooses the reader by content: a PNG named .svs opens as an image', async () => {
    const path = join(dir, 'misnamed.svs');
    await writePng(path, smoothImage(64, 64));
    const s = await openSlide(path);
    expect(s.vendor).toBe('image');
    await s.close();
  });
});

describe('TileCache', () => {
  it('stays within its byte budget and shares concurrent loads', async () => {
    const cache = new TileCache(10_000);
    let loads = 0;
    const load = async () => {
      loads++;
      return new Uint8Array(3000);
    };
    await Promise.all([cache.get('a', load), cache.get('a', load)]);
    expect(loads).toBe(1);
    for (let i = 0; i < 20; i++) await cache.get(`k${i}`, load);
    expect(cache.bytes).toBeLessThanOrEqual(10_000);
    await cache.get('k19', load);
    expect(cache.hits).toBeGreaterThan(0);
  });
});

const hasOpenSlide = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import openslide'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(missingTool(hasOpenSlide))('cross-check against OpenSlide (python3-openslide)', () => {
  let paths: string[];
  beforeAll(async () => {
    paths = [join(dir, 'os-ycbcr.svs'), join(dir, 'os-rgb.svs'), join(dir, 'os-pyr.tiff')];
    await writeTestSvs(paths[0], img, 'ycbcr');
    await writeTestSvs(paths[1], img, 'rgb');
    await writeSharpPyramid(paths[2], img, { mpp: 0.5 });
  });

  it('same levels, mpp, associated images and region pixels', async () => {
    const script = `
import json, sys, openslide
out = []
for p in sys.argv[1:]:
    s = openslide.OpenSlide(p)
    r = s.read_region((333, 217), 0, (64, 48)).convert('RGB')
    r1 = s.read_region((800, 400), 1, (40, 30)).convert('RGB')
    # OpenSlide 3.4 gives no mpp for generic TIFF; its tiff.* properties carry the resolution.
    mpp = s.properties.get('openslide.mpp-x')
    if mpp is None and s.properties.get('tiff.ResolutionUnit') == 'centimeter':
        mpp = 10000 / float(s.properties['tiff.XResolution'])
    out.append({'dims': s.level_dimensions, 'mpp': mpp,
                'vendor': s.properties.get('openslide.vendor'), 'assoc': sorted(s.associated_images.keys()),
                'px': list(r.tobytes()), 'px1': list(r1.tobytes())})
print(json.dumps(out))`;
    const ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, ...paths], { encoding: 'utf8', maxBuffer: 64 << 20 }));
    for (let i = 0; i < paths.length; i++) {
      const s = await openSlide(paths[i]);
      expect(s.levels.map((l) => [l.width, l.height])).toEqual(ref[i].dims);
      expect(s.mpp).toBeCloseTo(Number(ref[i].mpp), 4);
      expect([...s.associatedImages].sort()).toEqual(ref[i].assoc);
      expect(maxAbsDiff((await s.readRegion(0, 333, 217, 64, 48)).data, Uint8Array.from(ref[i].px))).toBe(0);
      expect(maxAbsDiff((await s.readRegion(1, 800, 400, 40, 30)).data, Uint8Array.from(ref[i].px1))).toBe(0);
      await s.close();
    }
  });
});
