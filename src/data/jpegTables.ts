/**
 * JPEG byte-stream surgery for TIFF tiles. TIFF "new-style" JPEG (compression 7) stores the quantisation
 * and Huffman tables once in the JPEGTables tag and leaves them out of each tile ("abbreviated" streams).
 * libjpeg (through sharp) decodes a tile when the tables are put in front of it: JPEGTables without its
 * EOI marker, then the tile without its SOI marker.
 */
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DQT = 0xdb;
const DHT = 0xc4;
const APP0 = 0xe0;
const APP14 = 0xee;

export interface JpegSegment {
  marker: number;
  start: number;
  end: number; // exclusive; for SOS, the end of the whole scan to EOI
}

/** Lists the marker segments up to and including SOS (the entropy-coded data follows SOS). */
export function jpegSegments(bytes: Uint8Array): JpegSegment[] {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) throw new Error('not a JPEG stream (no SOI marker)');
  const segs: JpegSegment[] = [{ marker: SOI, start: 0, end: 2 }];
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) throw new Error(`corrupt JPEG stream: expected a marker at byte ${p}`);
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === EOI) {
      segs.push({ marker, start: p, end: p + 2 });
      return segs;
    }
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (len < 2 || p + 2 + len > bytes.length) throw new Error(`corrupt JPEG stream: segment at byte ${p} runs past the end`);
    if (marker === SOS) {
      segs.push({ marker, start: p, end: bytes.length });
      return segs;
    }
    segs.push({ marker, start: p, end: p + 2 + len });
    p += 2 + len;
  }
  throw new Error('corrupt JPEG stream: ends before the scan');
}

function hasMarker(bytes: Uint8Array, marker: number): boolean {
  try {
    return jpegSegments(bytes).some((s) => s.marker === marker);
  } catch {
    return false;
  }
}

/**
 * An Adobe APP14 segment with transform 0: tells libjpeg the components are RGB, not YCbCr. TIFF files
 * with PhotometricInterpretation RGB and JPEG tiles (Aperio's "JPEG/RGB") need it, because libtiff sets
 * the colour space out of band and a standalone decoder would otherwise assume YCbCr.
 */
const ADOBE_RGB = Uint8Array.from([0xff, APP14, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0, 0, 0, 0, 0]);

export function spliceJpegTables(tables: Uint8Array | undefined, tile: Uint8Array, rgbComponents: boolean): Uint8Array {
  if (tile.length < 4 || tile[0] !== 0xff || tile[1] !== SOI) throw new Error('tile is not a JPEG stream (no SOI marker)');
  const needAdobe = rgbComponents && !hasMarker(tile, APP14) && !(tables && hasMarker(tables, APP14));
  const head = tables && tables.length >= 4 ? tables.subarray(0, tables.length - 2) : tile.subarray(0, 2);
  return concatBytes([head, ...(needAdobe ? [ADOBE_RGB] : []), tile.subarray(2)]);
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * Splits a complete JPEG into shared tables (SOI, DQT, DHT, EOI) and an abbreviated stream without
 * them: what a TIFF writer stores in JPEGTables and in each tile. Tiles encoded with the same quality
 * and standard Huffman tables (no per-image optimisation) share identical tables.
 */
export function splitJpegTables(jpeg: Uint8Array): { tables: Uint8Array; abbreviated: Uint8Array } {
  const segs = jpegSegments(jpeg);
  const tableSegs = segs.filter((s) => s.marker === DQT || s.marker === DHT);
  const rest = segs.filter((s) => s.marker !== DQT && s.marker !== DHT && s.marker !== APP0 && s.marker !== SOI);
  const soi = Uint8Array.from([0xff, SOI]);
  const eoi = Uint8Array.from([0xff, EOI]);
  return {
    tables: concatBytes([soi, ...tableSegs.map((s) => jpeg.subarray(s.start, s.end)), eoi]),
    abbreviated: concatBytes([soi, ...rest.map((s) => jpeg.subarray(s.start, s.end))]),
  };
}
