import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng, type RgbImage } from '../../src/core/index.ts';
import {
  jpegCorruption,
  loadScannerProfile,
  scannerProfileSchema,
  shippedScannerProfiles,
  simulateScanner,
  transformFromSpec,
} from '../../src/augment/index.ts';
import { tempDir } from '../helpers.ts';
import { stainedTile } from './tiles.ts';

/** A vertical dark/light edge, for measuring blur widths. */
function edge(size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) data.fill(x < size / 2 ? 40 : 220, (y * size + x) * 3, (y * size + x) * 3 + 3);
  return { width: size, height: size, data };
}

/** Pixels between 10% and 90% of the edge's rise, on the middle row. */
function edgeWidth(img: RgbImage): number {
  const row = Math.floor(img.height / 2) * img.width * 3;
  let n = 0;
  for (let x = 0; x < img.width; x++) {
    const v = img.data[row + x * 3];
    if (v > 40 + 0.1 * 180 && v < 40 + 0.9 * 180) n++;
  }
  return n;
}

describe('scanner profiles', () => {
  it('ships at least five valid, documented profiles', () => {
    const profiles = shippedScannerProfiles();
    expect(profiles.length).toBeGreaterThanOrEqual(5);
    for (const p of profiles) expect(p.description.length).toBeGreaterThan(10);
    expect(new Set(profiles.map((p) => p.name)).size).toBe(profiles.length);
  });

  it('an all-off profile is the identity', async () => {
    const p = scannerProfileSchema.parse({ name: 'off', description: 'nothing', jpegQuality: 100 });
    const tile = stainedTile(48, 1);
    expect((await simulateScanner(tile, p, 0.5, createRng(1))).data).toEqual(tile.data);
  });

  it('optical blur is given in microns: half the mpp, twice the pixels', async () => {
    const p = scannerProfileSchema.parse({ name: 'blur', description: 'blur only', optics: { blurUm: 1.0 }, jpegQuality: 100 });
    const at05 = edgeWidth(await simulateScanner(edge(64), p, 0.5, createRng(1)));
    const at025 = edgeWidth(await simulateScanner(edge(64), p, 0.25, createRng(1)));
    expect(at05).toBeGreaterThanOrEqual(4);
    expect(at025 / at05).toBeGreaterThan(1.6);
    expect(at025 / at05).toBeLessThan(2.5);
  });

  it('every shipped profile changes a tile, reproducibly, and differently from the others', async () => {
    const tile = stainedTile(64, 2);
    const outs = new Map<string, string>();
    for (const p of shippedScannerProfiles()) {
      const t = transformFromSpec({ name: 'scanner', profile: p.name, mpp: 0.5 });
      const a = await t.apply(tile, createRng(7));
      const b = await t.apply(tile, createRng(7));
      expect(a.data).toEqual(b.data);
      expect(a.data).not.toEqual(tile.data);
      outs.set(p.name, Buffer.from(a.data).toString('base64'));
    }
    expect(new Set(outs.values()).size).toBe(outs.size);
  });

  it('loads a user profile from YAML and reports bad ones with their path', () => {
    const dir = tempDir();
    const good = join(dir, 'mine.yaml');
    writeFileSync(good, 'name: my-scanner\ndescription: test profile\nnoise: {readSigma: 2}\n');
    expect(loadScannerProfile(good).noise.readSigma).toBe(2);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: x\ndescription: y\noptics: {blurUm: -1}\n');
    expect(() => loadScannerProfile(bad)).toThrow(/bad\.yaml: optics\.blurUm/);
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, 'name: x\ndescription: y\nnoize: {}\n');
    expect(() => loadScannerProfile(typo)).toThrow(/typo\.yaml: .*noize/);
    expect(() => loadScannerProfile('no-such-scanner')).toThrow(/unknown scanner profile "no-such-scanner"; shipped: /);
  });
});

describe('rescans: how two acquisitions of the same glass differ', () => {
  const tile = stainedTile(64, 3);
  const base = { name: 'r', description: 'rescan test', jpegQuality: 100 };

  it('only a rescan draws the jitter, from a stream of its own: without a rescan section a rescan is the plain acquisition', async () => {
    const noisy = scannerProfileSchema.parse({ ...base, noise: { readSigma: 3 }, illumination: { gradient: 0.1 } });
    const plain = await simulateScanner(tile, noisy, 0.5, createRng(7));
    expect((await simulateScanner(tile, noisy, 0.5, createRng(7), { rescan: true })).data).toEqual(plain.data);
    const jittered = scannerProfileSchema.parse({
      ...base,
      noise: { readSigma: 3 },
      illumination: { gradient: 0.1 },
      rescan: { defocusUm: 1 },
    });
    // The same profile without a rescan is unchanged by its rescan section (slides rendered with it stay as they were).
    expect((await simulateScanner(tile, jittered, 0.5, createRng(7))).data).toEqual(plain.data);
  });

  it('focus varies between no extra defocus and the most the profile allows, and differs between rescans', async () => {
    const sharpness = (img: RgbImage) => {
      let s = 0;
      for (let y = 1; y < img.height - 1; y++)
        for (let x = 1; x < img.width - 1; x++) {
          const i = (y * img.width + x) * 3;
          const lap = 4 * img.data[i] - img.data[i - 3] - img.data[i + 3] - img.data[i - img.width * 3] - img.data[i + img.width * 3];
          s += lap * lap;
        }
      return s;
    };
    const p = scannerProfileSchema.parse({ ...base, rescan: { defocusUm: 1.5 } });
    const sharpest = sharpness(await simulateScanner(tile, p, 0.5, createRng(1)));
    const blurriest = sharpness(
      await simulateScanner(tile, scannerProfileSchema.parse({ ...base, optics: { defocusUm: 1.5 } }), 0.5, createRng(1)),
    );
    const rescans = await Promise.all([1, 2, 3, 4].map((s) => simulateScanner(tile, p, 0.5, createRng(s), { rescan: true })));
    for (const r of rescans) {
      expect(sharpness(r)).toBeLessThanOrEqual(sharpest);
      expect(sharpness(r)).toBeGreaterThanOrEqual(blurriest);
    }
    expect(new Set(rescans.map((r) => Buffer.from(r.data).toString('base64'))).size).toBe(4);
  });

  it('exposure scales every pixel by one gain within the stated range', async () => {
    const grey: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(100) };
    const p = scannerProfileSchema.parse({ ...base, rescan: { exposure: 0.1 } });
    const gains = new Set<number>();
    for (const s of [1, 2, 3, 4, 5]) {
      const out = await simulateScanner(grey, p, 0.5, createRng(s), { rescan: true });
      expect(new Set(out.data).size).toBe(1);
      expect(out.data[0]).toBeGreaterThanOrEqual(90);
      expect(out.data[0]).toBeLessThanOrEqual(110);
      gains.add(out.data[0]);
    }
    expect(gains.size).toBeGreaterThan(1);
  });

  it('JPEG quality is one quality within q +/- the jitter', async () => {
    const p = scannerProfileSchema.parse({ ...base, jpegQuality: 80, rescan: { jpegQuality: 5 } });
    const raw = await simulateScanner(tile, { ...p, jpegQuality: 100 }, 0.5, createRng(9));
    const out = await simulateScanner(tile, p, 0.5, createRng(9), { rescan: true });
    const matches = [];
    for (let q = 75; q <= 85; q++)
      if (Buffer.compare(Buffer.from((await jpegCorruption(raw, q, 'simulated')).data), Buffer.from(out.data)) === 0) matches.push(q);
    expect(matches.length).toBeGreaterThan(0);
  });
});
