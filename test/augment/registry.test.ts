import { describe, expect, it } from 'vitest';
import { createRng, type RgbImage } from '../../src/core/index.ts';
import { buildPipeline, describeTransforms, flipHorizontal, transformFromSpec, transformRegistry } from '../../src/augment/index.ts';
import { psnr, stainedTile } from './tiles.ts';

/** Params that make each transform runnable without user data. */
const REQUIRED: Record<string, Record<string, unknown>> = {
  'reinhard-normalize': { means: [60, 25, -10], stds: [12, 8, 6] },
  'random-crop': { size: 48 },
};

function specFor(name: string): Record<string, unknown> {
  return { name, ...(REQUIRED[name] ?? {}) };
}

function meanAbsDiff(a: RgbImage, b: RgbImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

const names = transformRegistry.names();

describe('transform registry', () => {
  it('holds the transforms the issue lists', () => {
    for (const n of [
      'hed-jitter',
      'hsv-jitter',
      'brightness',
      'contrast',
      'gamma',
      'macenko-augment',
      'macenko-normalize',
      'reinhard-normalize',
      'hflip',
      'vflip',
      'rot90',
      'scale',
      'elastic',
      'random-crop',
      'scanner',
      'gaussian-noise',
      'shot-noise',
      'gaussian-blur',
      'defocus-blur',
      'motion-blur',
      'jpeg',
      'pixelate',
      'brightness-shift',
      'contrast-loss',
      'desaturate',
      'stain-h',
      'stain-e',
      'pen-marks',
      'air-bubbles',
      'tissue-fold',
      'dark-spots',
      'threads',
      'uneven-thickness',
    ]) {
      expect(names).toContain(n);
    }
    expect(describeTransforms().find((d) => d.name === 'jpeg')!.severities).toEqual([25, 18, 15, 10, 7].map((quality) => ({ quality })));
  });

  it.each(names)('%s: seeded determinism and no mutation of the input', async (name) => {
    const tile = stainedTile(64, 2);
    const copy = tile.data.slice();
    const t = transformFromSpec(specFor(name));
    const a = await t.apply(tile, createRng(11));
    const b = await t.apply(tile, createRng(11));
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(tile.data).toEqual(copy);
  });

  it.each(names)('%s: white, black and one-pixel tiles do not crash', async (name) => {
    const t = transformFromSpec(specFor(name));
    const white = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(255) };
    const black = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
    const one = { width: 1, height: 1, data: Uint8Array.from([180, 90, 160]) };
    for (const img of [white, black, one]) {
      const out = await t.apply(img, createRng(3));
      expect(out.data.length).toBe(out.width * out.height * 3);
    }
    const def = transformRegistry.get(name);
    if (def.kind === 'stain' || def.kind === 'normalise') {
      expect((await t.apply(white, createRng(3))).data).toEqual(white.data);
      expect((await t.apply(black, createRng(3))).data).toEqual(black.data);
    }
  });

  const withSeverities = names.filter((n) => transformRegistry.get(n).severities);
  it.each(withSeverities)('%s: higher severity, lower similarity to the clean tile', async (name) => {
    const tile = stainedTile(96, 4, { glass: false });
    const d: number[] = [];
    for (let s = 1; s <= 5; s++) {
      let sum = 0;
      for (const seed of [1, 2, 3]) sum += meanAbsDiff(tile, await transformFromSpec({ name, severity: s }).apply(tile, createRng(seed)));
      d.push(sum / 3);
    }
    for (let s = 1; s < 5; s++)
      expect(d[s], `${name} severity ${s + 1} vs ${s}: ${d.map((x) => x.toFixed(2)).join(' ')}`).toBeGreaterThan(d[s - 1]);
  });

  it('JPEG PSNR falls with severity', async () => {
    const tile = stainedTile(96, 4, { glass: false });
    const scores = [];
    for (let s = 1; s <= 5; s++)
      scores.push(psnr(tile.data, (await transformFromSpec({ name: 'jpeg', severity: s }).apply(tile, createRng(1))).data));
    for (let s = 1; s < 5; s++) expect(scores[s]).toBeLessThan(scores[s - 1]);
  });

  it('says clearly what is wrong with a spec', () => {
    expect(() => transformFromSpec({ name: 'hed-jiter' })).toThrow(/unknown transform "hed-jiter"; known: .*hed-jitter/);
    expect(() => transformFromSpec({ name: 'hed-jitter', sigmaa: 0.1 })).toThrow(/hed-jitter: unknown parameter "sigmaa"/);
    expect(() => transformFromSpec({ name: 'hed-jitter', sigma: 'big' })).toThrow(/sigma/);
    expect(() => transformFromSpec({ name: 'jpeg', severity: 6 })).toThrow(/severity must be an integer 1-5/);
    expect(() => transformFromSpec({ name: 'hflip', severity: 2 })).toThrow(/no severity levels/);
    expect(() => transformFromSpec({ name: 'hed-jitter', preset: 'medium' })).toThrow(/no preset "medium"/);
  });
});

describe('pipelines', () => {
  it('apply steps with probability and one-of groups, reproducibly', async () => {
    const spec = [
      { name: 'hflip', p: 0.5 },
      { name: 'hed-jitter', preset: 'light' },
      {
        'one-of': [
          { name: 'gaussian-blur', sigma: 1 },
          { name: 'jpeg', quality: 60 },
        ],
        p: 0.5,
      },
    ];
    const tile = stainedTile(48, 9);
    const a = await buildPipeline(spec).apply(tile, createRng(5));
    const b = await buildPipeline(spec).apply(tile, createRng(5));
    expect(a.data).toEqual(b.data);
    const outs = new Set<string>();
    for (let s = 0; s < 12; s++) outs.add(Buffer.from((await buildPipeline(spec).apply(tile, createRng(s))).data).toString('base64'));
    expect(outs.size).toBe(12);
  });

  it('a step appended at the end does not change what earlier steps did', async () => {
    const tile = stainedTile(48, 9);
    const base = [{ name: 'rot90' }, { name: 'hed-jitter', sigma: 0.1 }];
    const a = await buildPipeline(base).apply(tile, createRng(2));
    const b = await buildPipeline([...base, { name: 'brightness', delta: 0 }]).apply(tile, createRng(2));
    expect(b.data).toEqual(a.data);
  });

  it('p: 0 never applies, p: 1 always applies', async () => {
    const tile = stainedTile(32, 1);
    expect((await buildPipeline([{ name: 'hflip', p: 0 }]).apply(tile, createRng(1))).data).toEqual(tile.data);
    // One flip on an asymmetric tile: ignoring p (or drawing it wrongly) would show in some of the seeds.
    for (let s = 0; s < 20; s++)
      expect((await buildPipeline([{ name: 'hflip', p: 1 }]).apply(tile, createRng(s))).data).toEqual(flipHorizontal(tile).data);
    expect(flipHorizontal(tile).data).not.toEqual(tile.data);
  });

  it('rejects malformed steps with their position', () => {
    expect(() => buildPipeline([{ name: 'hflip', p: 2 }])).toThrow(/step 1: p must be a number between 0 and 1/);
    expect(() => buildPipeline([{ name: 'hflip' }, { 'one-of': [] }])).toThrow(/step 2: one-of needs a non-empty list/);
    expect(() => buildPipeline([{ 'one-of': [{ name: 'hflip', p: 0.5 }] }])).toThrow(/p belongs to the one-of step/);
    expect(() => buildPipeline({ name: 'hflip' })).toThrow(/a pipeline is a list of steps/);
    expect(() => buildPipeline(['hflip'])).toThrow(/step 1: each step is a mapping/);
  });
});
