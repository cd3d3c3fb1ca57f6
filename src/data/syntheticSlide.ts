import { createImage, type RgbImage } from '../core/index.ts';
import { checkedSlide, type SlideLevel, type SlideSource } from './slide.ts';

export type PixelFn = (x: number, y: number, out: Uint8Array, o: number) => void;

export interface InMemorySlideOptions {
  id?: string;
  width: number;
  height: number;
  mpp?: number;
  /** Downsample factors of the levels (level 0 is 1). */
  downsamples?: number[];
  /** Colour at a level-0 position, written to out[o..o+2]. */
  pixel: PixelFn;
}

/**
 * A slide computed on the fly from a function of level-0 coordinates: the test double for every
 * consumer of SlideSource, at any size (a 50,000 x 50,000 slide costs nothing until read).
 * Lower levels are point-sampled, like a scanner's pyramid without the anti-aliasing.
 */
export function createInMemorySlide(options: InMemorySlideOptions): SlideSource {
  const ds = options.downsamples ?? [1];
  const levels: SlideLevel[] = ds.map((d) => ({
    width: Math.max(1, Math.floor(options.width / d)),
    height: Math.max(1, Math.floor(options.height / d)),
    downsample: d,
  }));
  return checkedSlide(options.id ?? 'synthetic', {
    levels,
    mpp: options.mpp,
    vendor: 'synthetic',
    associatedImages: [],
    async readLevelRect(level, x, y, w, h): Promise<RgbImage> {
      const d = levels[level].downsample;
      const img = createImage(w, h, 0);
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) options.pixel((x + c) * d, (y + r) * d, img.data, (r * w + c) * 3);
      }
      return img;
    },
    async readAssociatedImage() {
      throw new Error('unreachable');
    },
    async close() {},
  });
}

/**
 * Pink-purple tissue discs on white glass: the default content of test slides. Discs are placed on a
 * deterministic lattice so tests can compute the expected tissue fraction by hand.
 */
export function tissueDiscs(discs: { cx: number; cy: number; r: number }[]): PixelFn {
  return (x, y, out, o) => {
    for (const d of discs) {
      const dx = x - d.cx;
      const dy = y - d.cy;
      if (dx * dx + dy * dy <= d.r * d.r) {
        // Haematoxylin-ish purple speckle inside eosin pink, varying with position.
        const t = ((x * 7 + y * 13) % 17) / 17;
        out[o] = 200 - 70 * t;
        out[o + 1] = 110 - 40 * t;
        out[o + 2] = 190 - 20 * t;
        return;
      }
    }
    out[o] = 246;
    out[o + 1] = 246;
    out[o + 2] = 244;
  };
}
