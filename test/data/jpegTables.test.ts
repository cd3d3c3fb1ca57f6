import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodeJpeg, spliceJpegTables, splitJpegTables } from '../../src/data/index.ts';
import { maxAbsDiff, smoothImage } from '../helpers.ts';

async function decode(bytes: Uint8Array) {
  return new Uint8Array(await sharp(bytes).raw().toBuffer());
}

describe('JPEGTables', () => {
  it('split then splice gives back a stream that decodes to the same pixels', async () => {
    const img = smoothImage(64, 48);
    const jpeg = await encodeJpeg(img, 85, 'ycbcr');
    const { tables, abbreviated } = splitJpegTables(jpeg);
    // Tables hold DQT and DHT only; the tile keeps no table.
    expect([tables[0], tables[1], tables[tables.length - 2], tables[tables.length - 1]]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
    expect(abbreviated.length + tables.length).toBeLessThan(jpeg.length + 10);
    await expect(sharp(abbreviated).raw().toBuffer()).rejects.toThrow();
    expect(maxAbsDiff(await decode(spliceJpegTables(tables, abbreviated, false)), await decode(jpeg))).toBe(0);
  });

  it('tiles of one quality share identical tables', async () => {
    const a = splitJpegTables(await encodeJpeg(smoothImage(32, 32, 0), 90, 'ycbcr')).tables;
    const b = splitJpegTables(await encodeJpeg(smoothImage(32, 32, 99), 90, 'ycbcr')).tables;
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('RGB-component tiles need the Adobe marker to decode as RGB', async () => {
    const img = smoothImage(32, 32);
    const { tables, abbreviated } = splitJpegTables(await encodeJpeg(img, 95, 'rgb'));
    const asRgb = await decode(spliceJpegTables(tables, abbreviated, true));
    const asYcc = await decode(spliceJpegTables(tables, abbreviated, false));
    expect(maxAbsDiff(asRgb, img.data)).toBeLessThanOrEqual(3);
    expect(maxAbsDiff(asYcc, img.data)).toBeGreaterThan(20);
  });

  it('refuses what is not JPEG', () => {
    expect(() => spliceJpegTables(undefined, Uint8Array.from([1, 2, 3, 4]), false)).toThrow(/no SOI/);
    expect(() => splitJpegTables(Uint8Array.from([0xff, 0xd8, 0x00, 0x00]))).toThrow(/corrupt/);
  });
});
