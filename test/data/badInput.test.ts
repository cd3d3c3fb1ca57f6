import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError, InvalidSlideError, UnsupportedSlideError } from '../../src/core/index.ts';
import { openSlide } from '../../src/data/index.ts';
import { smoothImage, tempDir } from '../helpers.ts';
import { tagValueOffset, writeBytes, writePng, writeSharpPyramid, writeSmallTiledTiff, writeTestSvs } from './fixtures.ts';

/**
 * The bad-input corpus: every file must be refused with an InvalidSlideError (a user error: CLI exit 2)
 * whose message names the file, without allocating what the header declares.
 */
const dir = tempDir();
let good: Buffer;
let goodPath: string;
let pyramid: Buffer;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  goodPath = join(dir, 'good.tiff');
  await writeSmallTiledTiff(goodPath, smoothImage(300, 200));
  good = readFileSync(goodPath);
  await writeSharpPyramid(join(dir, 'pyr.tiff'), smoothImage(1200, 800));
  pyramid = readFileSync(join(dir, 'pyr.tiff'));
});

function patched(name: string, edit: (b: Buffer) => void): string {
  const b = Buffer.from(good);
  edit(b);
  return writeBytes(dir, name, b);
}

const openFds = () => readdirSync('/proc/self/fd').length;

async function expectRefused(path: string, pattern: RegExp, cls: new (...a: any[]) => Error = InvalidSlideError) {
  // As OpenSlide's own test harness does: a refused file leaves no descriptor open.
  const fds = openFds();
  let err: any;
  try {
    const s = await openSlide(path);
    // Some damage only shows when pixels are read.
    try {
      await s.readRegion(0, 0, 0, s.levels[0].width, s.levels[0].height);
    } finally {
      await s.close();
    }
  } catch (e) {
    err = e;
  }
  expect(err, `${path} was accepted`).toBeInstanceOf(cls);
  expect(err.message).toContain(path);
  expect(err.message).toMatch(pattern);
  expect(err.message.split('\n')).toHaveLength(1);
  expect(openFds(), `${path}: open descriptors`).toBe(fds);
}

describe('bad input corpus', () => {
  it('the unpatched file opens (control)', async () => {
    const s = await openSlide(goodPath);
    expect(s.levels[0].width).toBe(300);
    await s.close();
  });

  it('missing file, folder, empty file, wrong magic bytes', async () => {
    await expectRefused(join(dir, 'nope.svs'), /file not found/, InputError);
    await expectRefused(dir, /not a file/, InputError);
    await expectRefused(writeBytes(dir, 'empty.tiff', ''), /empty/);
    await expectRefused(writeBytes(dir, 'text.svs', 'image_id,isup_grade\n'), /unrecognised magic bytes/);
    await expectRefused(writeBytes(dir, 'four.tiff', Buffer.from([0x49, 0x49, 42, 0])), /truncated/);
  });

  it('truncated files: header only, and tiles cut off', async () => {
    await expectRefused(writeBytes(dir, 'head.tiff', good.subarray(0, 100)), /.+/);
    await expectRefused(writeBytes(dir, 'half-pyramid.tiff', pyramid.subarray(0, Math.floor(pyramid.length / 2))), /.+/);
    // Our writer puts IFDs after the data: keep the IFD, drop the tile bytes it points at.
    const b = Buffer.from(good);
    const ifd = b.readUInt32LE(4);
    const cut = Buffer.concat([b.subarray(0, 8), Buffer.alloc(ifd - 8 - 1000), b.subarray(ifd - 1000)]);
    cut.fill(0, 8, 8 + 2000);
    await expectRefused(writeBytes(dir, 'zeroed-tiles.tiff', cut), /cannot decode JPEG tile|not a JPEG/);
  });

  it('tile offsets past the end of the file', async () => {
    const path = patched('offsets.tiff', (b) => {
      const at = b.readUInt32LE(tagValueOffset(b, 324));
      b.writeUInt32LE(b.length + 10_000, at);
    });
    await expectRefused(path, /past the end of the file/);
  });

  it('a declared size of 10^9 x 10^9 pixels, refused before any allocation', async () => {
    const path = patched('huge.tiff', (b) => {
      b.writeUInt32LE(1_000_000_000, tagValueOffset(b, 256));
      b.writeUInt32LE(1_000_000_000, tagValueOffset(b, 257));
    });
    await expectRefused(path, /1000000000x1000000000 pixels/);
  });

  it('zero-size image and zero-size tiles', async () => {
    await expectRefused(
      patched('zero-width.tiff', (b) => b.writeUInt32LE(0, tagValueOffset(b, 256))),
      /0x200 pixels/,
    );
    await expectRefused(
      patched('zero-tile.tiff', (b) => b.writeUInt32LE(0, tagValueOffset(b, 322))),
      /tiles of 0x64/,
    );
  });

  it('a directory chain that loops', async () => {
    const path = patched('loop.tiff', (b) => {
      const ifd = b.readUInt32LE(4);
      const n = b.readUInt16LE(ifd);
      b.writeUInt32LE(ifd, ifd + 2 + n * 12);
    });
    await expectRefused(path, /loops/);
  });

  it('JPEG 2000 SVS: unsupported compression, said clearly', async () => {
    const path = join(dir, 'jp2k.svs');
    await writeTestSvs(path, smoothImage(600, 400), 'ycbcr', { levelCompressionCode: 33003 });
    await expectRefused(path, /unsupported compression JPEG 2000/, UnsupportedSlideError);
  });

  it('other unknown compressions', async () => {
    await expectRefused(
      patched('c9999.tiff', (b) => b.writeUInt16LE(9999, tagValueOffset(b, 259))),
      /unsupported compression code 9999/,
    );
  });

  it('a PNG declaring an impossible size, and a corrupt PNG body', async () => {
    const png = join(dir, 'ok.png');
    await writePng(png, smoothImage(32, 32));
    const b = readFileSync(png);
    const huge = Buffer.from(b);
    huge.writeUInt32BE(1_000_000_000, 16);
    huge.writeUInt32BE(1_000_000_000, 20);
    await expectRefused(writeBytes(dir, 'huge.png', huge), /.+/);
    const body = Buffer.from(b);
    body.fill(7, 40, body.length - 12);
    await expectRefused(writeBytes(dir, 'garbled.png', body), /cannot (decode image|read image header)/);
  });

  it('corrupt pixel data inside one JPEG tile', async () => {
    const path = patched('garbage-tile.tiff', (b) => {
      const at = b.readUInt32LE(tagValueOffset(b, 324));
      const off = b.readUInt32LE(at);
      b.fill(0x00, off, off + 40);
    });
    await expectRefused(path, /tile 0 of level 0/);
  });
});
