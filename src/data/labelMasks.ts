import { InvalidSlideError } from '../core/index.ts';
import type { SlideSource } from './slide.ts';

/**
 * How a label mask's values (first channel) name tissue. PANDA's two providers: Radboud 0 background,
 * 1 stroma, 2 benign epithelium, 3-5 Gleason patterns 3-5; Karolinska 0 background, 1 benign tissue,
 * 2 cancer (no pattern). gradelab's synthetic slides write Radboud's values and 6 for anomalous tissue.
 */
export const MASK_SCHEMES = ['radboud', 'karolinska', 'gradelab'] as const;
export type MaskScheme = (typeof MASK_SCHEMES)[number];

/** The largest value each scheme uses; a mask holding more is not of that scheme. */
const MAX_VALUE: Record<MaskScheme, number> = { radboud: 5, karolinska: 2, gradelab: 6 };

/**
 * A tile's tissue classes as shares of its footprint (the rest is background or, for gradelab masks,
 * anomaly): benign tissue, cancer of any pattern, and cancer by Gleason pattern where the scheme says
 * (undefined for Karolinska's masks, which mark cancer without a pattern).
 */
export interface MaskShares {
  benign: number;
  cancer: number;
  g3?: number;
  g4?: number;
  g5?: number;
}

/** The index columns that hold them, in this order (empty when a slide has no mask). */
export const INDEX_MASK_COLUMNS = ['mask_benign', 'mask_cancer', 'mask_g3', 'mask_g4', 'mask_g5'] as const;

/** Counts a region's values (first channel of RGB) into shares by scheme; a value outside it is one line naming the mask. */
export function maskShares(data: Uint8Array, scheme: MaskScheme, where: string): MaskShares {
  const counts = new Float64Array(256);
  for (let i = 0; i < data.length; i += 3) counts[data[i]]++;
  const n = data.length / 3;
  for (let v = MAX_VALUE[scheme] + 1; v < 256; v++)
    if (counts[v])
      throw new InvalidSlideError(where, `holds mask value ${v}, which the ${scheme} scheme does not use (0-${MAX_VALUE[scheme]})`);
  if (scheme === 'karolinska') return { benign: counts[1] / n, cancer: counts[2] / n };
  return {
    benign: (counts[1] + counts[2]) / n,
    cancer: (counts[3] + counts[4] + counts[5]) / n,
    g3: counts[3] / n,
    g4: counts[4] / n,
    g5: counts[5] / n,
  };
}

/** The shares as the index's mask columns (3 decimals, as tissue and anomaly_fraction are stored). */
export function maskShareCells(s: MaskShares | undefined): string[] {
  if (!s) return INDEX_MASK_COLUMNS.map(() => '');
  return [s.benign, s.cancer, s.g3, s.g4, s.g5].map((v) => (v === undefined ? '' : v.toFixed(3)));
}

/**
 * Checks a mask before its slide is tiled: the same size as the slide's level 0 (a mask of another
 * slide, or of one level, is refused) and, on its smallest reduced level, values within the scheme.
 */
export async function checkLabelMask(mask: SlideSource, slide: SlideSource, scheme: MaskScheme, path: string): Promise<void> {
  const [m0, s0] = [mask.levels[0], slide.levels[0]];
  if (m0.width !== s0.width || m0.height !== s0.height)
    throw new InvalidSlideError(
      path,
      `is ${m0.width} x ${m0.height} but its slide is ${s0.width} x ${s0.height}: not this slide's label mask`,
    );
  const last = mask.levels.length - 1;
  const { width, height } = mask.levels[last];
  // A mask without a reduced level (or with a large one) is checked tile by tile as it is read: a read
  // here would decode all of it once more than tiling does.
  if (last === 0 || width * height > 4096 * 4096) return;
  const region = await mask.readRegion(last, 0, 0, width, height);
  maskShares(region.data, scheme, path);
}

/** A PANDA provider's scheme (data_provider column); other providers have none. */
export function pandaMaskScheme(provider: string): MaskScheme | undefined {
  const p = provider.trim().toLowerCase();
  return p === 'radboud' ? 'radboud' : p === 'karolinska' ? 'karolinska' : undefined;
}

/** The share of a tile's tissue that its mask must mark as cancer for the tile to be a cancer tile. */
export const CANCER_TILE_SHARE = 0.1;

/** A tile's mask shares as the tile index stores them (undefined without a mask, patterns without a pattern mask). */
export interface TileMaskShares {
  maskBenign?: number;
  maskCancer?: number;
  maskG3?: number;
  maskG4?: number;
  maskG5?: number;
}

/** Whether a masked tile is a cancer tile: at least CANCER_TILE_SHARE of its tissue is cancer. */
export function isCancerTile(t: TileMaskShares): boolean {
  return (t.maskCancer ?? 0) >= CANCER_TILE_SHARE * ((t.maskBenign ?? 0) + (t.maskCancer ?? 0));
}

/**
 * A tile's Gleason pattern by its mask, 0 benign and 1-3 patterns 3-5: a cancer tile (at least
 * CANCER_TILE_SHARE of its tissue cancer) is its cancer's most extensive pattern (ties to the higher),
 * any other masked tile benign; undefined without a mask that draws patterns. Stroma does not count
 * against the cancer: masks mark gland epithelium, and a tumour's stroma would make its tiles benign.
 */
export function tilePattern(t: TileMaskShares): number | undefined {
  if (t.maskBenign === undefined || t.maskCancer === undefined || t.maskG3 === undefined) return undefined;
  const tissue = t.maskBenign + t.maskCancer;
  if (tissue <= 0) return undefined;
  if (!isCancerTile(t)) return 0;
  const shares = [t.maskG3, t.maskG4 ?? 0, t.maskG5 ?? 0];
  let best = 0;
  for (let c = 1; c < 3; c++) if (shares[c] >= shares[best]) best = c;
  return best + 1;
}
