import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng, type RgbImage } from '../../src/core/index.ts';
import {
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
