import { open } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, GradelabError, type Rng } from '../../src/core/index.ts';
import { openSlide } from '../../src/data/index.ts';
import { readTiff, TAG, type TiffFile } from '../../src/data/tiffDirectory.ts';
import { tempDir, missingTool } from '../helpers.ts';

/**
 * Seeded mutants of real SVS and TIFF files: truncation, bit flips in the header and directories,
 * offsets and counts past the end, huge dimensions and counts, zeroed JPEG tables, changed compression
 * and bit depth, sparse tiles. Each must be read (every level and associated image) or refused as a
 * user error with one line, within 10 s, with the process under 1 GB and no file handle left open.
 */
const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/slides/', import.meta.url));
const SOURCES = ['osp_small.svs', 'osp_boxes.tiff', 'cog_rgba8_cog.tiff'];
const KINDS = [
  'truncate',
  'flip-header',
  'flip-directory',
  'offset-past-end',
  'count-past-end',
  'huge-size',
  'zero-jpeg-tables',
  'compression',
  'bits-16',
  'count-2^30',
  'sparse-tile',
  'flip-description',
] as const;
type Kind = (typeof KINDS)[number];
const CASES = 300;
/** Cases that once failed (seed: what went wrong), kept so they stay fixed. */
const REGRESSIONS: number[] = [];

const dir = tempDir();
const openFds = () => readdirSync('/proc/self/fd').length;

interface Layout {
  tiff: TiffFile;
  bytes: Buffer;
}

/** Where a tag's entry and values lie in a little- or big-endian classic TIFF or BigTIFF. */
function entryAt(l: Layout, dirIndex: number, tag: number): { entry: number; valueAt: number; count: number; type: number } | undefined {
  const d = l.tiff.directories[dirIndex];
  const e = d.entries.get(tag);
  if (!e) return undefined;
  const size = l.tiff.big ? 20 : 12;
  const first = d.at + (l.tiff.big ? 8 : 2);
  let entry = first;
  for (let i = 0; ; i++) {
    const t = l.tiff.little ? l.bytes.readUInt16LE(first + i * size) : l.bytes.readUInt16BE(first + i * size);
    if (t === tag) {
      entry = first + i * size;
      break;
    }
  }
  const inline = entry + (l.tiff.big ? 12 : 8);
  return { entry, valueAt: e.offset < 0 ? inline : e.offset, count: e.count, type: e.type };
}

function writeUint(l: Layout, at: number, bytes: number, v: number): void {
  if (bytes === 2) l.tiff.little ? l.bytes.writeUInt16LE(v & 0xffff, at) : l.bytes.writeUInt16BE(v & 0xffff, at);
  else if (bytes === 4) l.tiff.little ? l.bytes.writeUInt32LE(v >>> 0, at) : l.bytes.writeUInt32BE(v >>> 0, at);
  else l.tiff.little ? l.bytes.writeBigUInt64LE(BigInt(v), at) : l.bytes.writeBigUInt64BE(BigInt(v), at);
}

/** An integer in [lo, hi]. */
const between = (rng: Rng, lo: number, hi: number) => lo + rng.int(hi - lo + 1);

const typeBytes = (type: number) => (type === 3 ? 2 : type === 16 ? 8 : 4);

/** Sets value `i` of a numeric tag (SHORT, LONG or LONG8). */
function setValue(l: Layout, d: number, tag: number, i: number, v: number): boolean {
  const e = entryAt(l, d, tag);
  if (!e || i >= e.count) return false;
  writeUint(l, e.valueAt + i * typeBytes(e.type), typeBytes(e.type), v);
  return true;
}

function mutate(kind: Kind, rng: Rng, l: Layout): string {
  const d = between(rng, 0, l.tiff.directories.length - 1);
  const blockTag = l.tiff.directories[d].entries.has(TAG.TileOffsets) ? TAG.TileOffsets : TAG.StripOffsets;
  const countTag = blockTag === TAG.TileOffsets ? TAG.TileByteCounts : TAG.StripByteCounts;
  const blocks = l.tiff.directories[d].entries.get(blockTag)?.count ?? 1;
  switch (kind) {
    case 'truncate': {
      const at = between(rng, 8, l.bytes.length - 1);
      l.bytes = l.bytes.subarray(0, at);
      return `cut at ${at}`;
    }
    case 'flip-header': {
      const at = between(rng, 0, l.tiff.big ? 15 : 7);
      l.bytes[at] ^= 1 << between(rng, 0, 7);
      return `header byte ${at}`;
    }
    case 'flip-directory': {
      const e = [...l.tiff.directories[d].entries.keys()];
      const info = entryAt(l, d, e[between(rng, 0, e.length - 1)])!;
      const at = info.entry + rng.int(l.tiff.big ? 20 : 12);
      l.bytes[at] ^= 1 << between(rng, 0, 7);
      return `directory ${d} byte ${at}`;
    }
    case 'offset-past-end':
      setValue(l, d, blockTag, between(rng, 0, blocks - 1), l.bytes.length + between(rng, 1, 1 << 20));
      return `directory ${d} offset past the end`;
    case 'count-past-end':
      setValue(l, d, countTag, between(rng, 0, blocks - 1), l.bytes.length + between(rng, 1, 1 << 20));
      return `directory ${d} byte count past the end`;
    case 'huge-size':
      setValue(l, d, rng.next() < 0.5 ? TAG.ImageWidth : TAG.ImageLength, 0, rng.next() < 0.5 ? 2 ** 31 - 1 : 1_000_000);
      return `directory ${d} huge size`;
    case 'zero-jpeg-tables': {
      const e = entryAt(l, d, TAG.JPEGTables);
      if (e) l.bytes.fill(0, e.valueAt, e.valueAt + e.count);
      return `directory ${d} JPEGTables zeroed`;
    }
    case 'compression': {
      const c = [1, 5, 6, 7, 8, 32773, 33003, 50000, 50001, 65000][between(rng, 0, 9)];
      setValue(l, d, TAG.Compression, 0, c);
      return `directory ${d} compression ${c}`;
    }
    case 'bits-16': {
      const n = entryAt(l, d, TAG.BitsPerSample)?.count ?? 0;
      for (let i = 0; i < n; i++) setValue(l, d, TAG.BitsPerSample, i, 16);
      return `directory ${d} 16 bits`;
    }
    case 'count-2^30': {
      const e = entryAt(l, d, blockTag);
      if (e) writeUint(l, e.entry + 4, l.tiff.big ? 8 : 4, 2 ** 30);
      return `directory ${d} ${blocks} -> 2^30 blocks`;
    }
    case 'sparse-tile':
      setValue(l, d, countTag, between(rng, 0, blocks - 1), 0);
      return `directory ${d} a block stored with zero bytes`;
    case 'flip-description': {
      const e = entryAt(l, 0, TAG.ImageDescription);
      // Past "Aperio": the vendor is kept, only the text changes (and maybe a property value).
      if (e && e.count > 12) l.bytes[e.valueAt + between(rng, 10, e.count - 2)] ^= 1 << between(rng, 0, 6);
      return 'description text';
    }
  }
}

/** Every level and associated image, whole. */
async function readAll(path: string): Promise<Uint8Array[]> {
  const slide = await openSlide(path);
  try {
    const out: Uint8Array[] = [];
    for (let level = 0; level < slide.levels.length; level++) {
      const { width, height } = slide.levels[level];
      out.push((await slide.readRegion(level, 0, 0, Math.min(width, 4096), Math.min(height, 4096))).data);
    }
    for (const name of slide.associatedImages) out.push((await slide.readAssociatedImage(name)).data);
    return out;
  } finally {
    await slide.close();
  }
}

const originals = new Map<string, { bytes: Buffer; tiff: TiffFile; pixels: Uint8Array[] }>();

beforeAll(async () => {
  for (const name of SOURCES) {
    const path = join(FIXTURES, name);
    if (!existsSync(path)) return;
    const fh = await open(path, 'r');
    const bytes = readFileSync(path);
    const tiff = await readTiff(path, fh, bytes.length);
    await fh.close();
    originals.set(name, { bytes, tiff, pixels: await readAll(path) });
  }
});

describe.skipIf(missingTool(existsSync(join(FIXTURES, 'osp_small.svs'))))('fuzzed real slides', () => {
  it(`${CASES} seeded mutants: read or refused with one line, under 1 GB, no handle left open`, async () => {
    const fdsBefore = openFds();
    let peakRss = 0;
    const outcomes: Record<string, number> = {};
    for (const seed of [...REGRESSIONS, ...Array.from({ length: CASES }, (_, i) => i)]) {
      const rng = createRng(`fuzz-${seed}`);
      const source = SOURCES[seed % SOURCES.length];
      const kind = KINDS[Math.floor(seed / SOURCES.length) % KINDS.length];
      const original = originals.get(source)!;
      const layout: Layout = { tiff: original.tiff, bytes: Buffer.from(original.bytes) };
      const what = mutate(kind, rng, layout);
      const path = join(dir, `case-${seed}-${source}`);
      writeFileSync(path, layout.bytes);
      const label = `seed ${seed}: ${source}, ${kind} (${what})`;
      let pixels: Uint8Array[] | undefined;
      try {
        pixels = await readAll(path);
        outcomes[`${kind}: read`] = (outcomes[`${kind}: read`] ?? 0) + 1;
      } catch (err) {
        expect(err, label).toBeInstanceOf(GradelabError);
        expect((err as GradelabError).userError, `${label}: ${(err as Error).message}`).toBe(true);
        expect((err as Error).message.split('\n'), label).toHaveLength(1);
        expect((err as Error).message, label).toContain(path);
        outcomes[`${kind}: refused`] = (outcomes[`${kind}: refused`] ?? 0) + 1;
      }
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      // A change to the description text alone leaves every pixel as it was.
      if (pixels && kind === 'flip-description') {
        expect(pixels.length, label).toBe(original.pixels.length);
        pixels.forEach((p, i) => expect(Buffer.compare(Buffer.from(p), Buffer.from(original.pixels[i])), label).toBe(0));
      }
      // A block stored with zero bytes is background: white, never an error.
      if (kind === 'sparse-tile') expect(pixels, `${label} was refused`).toBeDefined();
      // What can only be garbage or a giant allocation is refused, never read.
      if (['bits-16', 'count-2^30', 'huge-size'].includes(kind)) expect(pixels, `${label} was read`).toBeUndefined();
    }
    if (process.env.GRADELAB_FUZZ_REPORT) console.log(outcomes);
    expect(openFds()).toBe(fdsBefore);
    expect(peakRss).toBeLessThan(1 << 30);
    // Both outcomes occur: the corpus exercises the readers, not just the header checks.
    expect(Object.keys(outcomes).some((k) => k.endsWith('read'))).toBe(true);
    expect(Object.keys(outcomes).some((k) => k.endsWith('refused'))).toBe(true);
  }, 600_000);
});
