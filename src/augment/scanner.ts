import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { z } from 'zod';
import { ConfigError, createImage, parseYamlWith, type RgbImage, type Rng } from '../core/index.ts';
import { clampByte } from './colourSpaces.ts';
import { gaussianBlur, jpegCorruption, poisson, defocusBlur } from './corruptions.ts';
import { defineTransform } from './transform.ts';

/**
 * A simulated scanner: what a whole-slide scanner does to a slide's light, in the order it happens:
 * resolution (sampling at its own mpp), optics (Gaussian PSF and defocus, in microns), uneven
 * illumination, sensor noise (Poisson-Gaussian), the colour pipeline (3x3 matrix and tone curve), and
 * JPEG compression. No vendor publishes these parameters: the shipped profiles span plausible
 * variation and are named for what they do, not for a vendor.
 */
export const scannerProfileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and dashes'),
    description: z.string(),
    colour: z
      .object({
        /** Applied to RGB in [0,1]: out = M x in. */
        matrix: z
          .array(z.array(z.number()).length(3))
          .length(3)
          .default([
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
          ]),
        /** Tone curve: levels black..white mapped to 0..1 (outside 0..255 lowers contrast), then raised to gamma. */
        gamma: z.number().positive().default(1),
        black: z.number().min(-100).max(254).default(0),
        white: z.number().min(1).max(355).default(255),
      })
      .strict()
      .default({
        matrix: [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
        gamma: 1,
        black: 0,
        white: 255,
      }),
    optics: z
      .object({ blurUm: z.number().min(0).default(0), defocusUm: z.number().min(0).default(0) })
      .strict()
      .default({ blurUm: 0, defocusUm: 0 }),
    noise: z
      .object({
        /** Photons (electrons) at full white: Poisson noise; 0 disables. */
        fullWellPhotons: z.number().min(0).default(0),
        /** Read noise, standard deviation in 8-bit grey levels. */
        readSigma: z.number().min(0).default(0),
      })
      .strict()
      .default({ fullWellPhotons: 0, readSigma: 0 }),
    illumination: z
      .object({
        /** Darkening at the tile corners relative to the centre (0.05 = 5%). */
        vignette: z.number().min(0).max(0.9).default(0),
        /** Linear brightness ramp across the tile in a random direction (0.05 = 5% end to end). */
        gradient: z.number().min(0).max(0.9).default(0),
      })
      .strict()
      .default({ vignette: 0, gradient: 0 }),
    /**
     * How two acquisitions of the same glass on this scanner differ, drawn per tile when a precision study
     * rescans (never when slides are rendered or a suite perturbs tiles): the autofocus's error as extra
     * defocus uniform in [0, defocusUm] microns, an exposure gain uniform in [1 - exposure, 1 + exposure],
     * and a JPEG quality uniform in [q - jpegQuality, q + jpegQuality] (kept in 1-100).
     */
    rescan: z
      .object({
        defocusUm: z.number().min(0).default(0),
        exposure: z.number().min(0).max(0.5).default(0),
        jpegQuality: z.number().int().min(0).max(50).default(0),
      })
      .strict()
      .default({ defocusUm: 0, exposure: 0, jpegQuality: 0 }),
    /** The scanner's own sampling: the image is resampled to this mpp and back (0: none). */
    scanMpp: z.number().min(0).default(0),
    jpegQuality: z.number().int().min(1).max(100).default(95),
  })
  .strict();

export type ScannerProfile = z.infer<typeof scannerProfileSchema>;

const PROFILE_DIR = fileURLToPath(new URL('./scanners/', import.meta.url));

function parseProfile(text: string, where: string): ScannerProfile {
  return parseYamlWith(text, scannerProfileSchema, where);
}

/** The shipped profiles, by name. */
export function shippedScannerProfiles(): ScannerProfile[] {
  return readdirSync(PROFILE_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parseProfile(readFileSync(join(PROFILE_DIR, f), 'utf8'), join(PROFILE_DIR, f)));
}

/** A shipped profile by name, or a YAML file by path. */
export function loadScannerProfile(nameOrPath: string): ScannerProfile {
  if (nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml')) {
    if (!existsSync(nameOrPath)) throw new ConfigError(`${nameOrPath}: scanner profile not found`);
    return parseProfile(readFileSync(nameOrPath, 'utf8'), nameOrPath);
  }
  const found = shippedScannerProfiles().find((p) => p.name === nameOrPath);
  if (!found)
    throw new ConfigError(
      `unknown scanner profile "${nameOrPath}"; shipped: ${shippedScannerProfiles()
        .map((p) => p.name)
        .join(', ')}`,
    );
  return found;
}

async function resampleThrough(img: RgbImage, factor: number): Promise<RgbImage> {
  const w = Math.max(1, Math.round(img.width * factor));
  const h = Math.max(1, Math.round(img.height * factor));
  const small = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(w, h, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
  const back = await sharp(small, { raw: { width: w, height: h, channels: 3 } })
    .resize(img.width, img.height, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width: img.width, height: img.height, data: new Uint8Array(back.buffer, back.byteOffset, back.byteLength) };
}

/** One rescan's focus, exposure and compression (the profile's own when `rescan` is off). */
function acquisition(profile: ScannerProfile, rng: Rng, rescan: boolean): { defocusUm: number; gain: number; jpegQuality: number } {
  const j = profile.rescan;
  if (!rescan) return { defocusUm: profile.optics.defocusUm, gain: 1, jpegQuality: profile.jpegQuality };
  // A stream of its own, so a rescan draws the same noise and illumination as one acquisition would.
  const r = rng.fork('rescan');
  const q = Math.round(profile.jpegQuality + r.uniform(-j.jpegQuality, j.jpegQuality));
  return {
    defocusUm: profile.optics.defocusUm + r.uniform(0, j.defocusUm),
    gain: 1 + r.uniform(-j.exposure, j.exposure),
    jpegQuality: Math.min(100, Math.max(1, q)),
  };
}

/** Each pixel's distance from the centre over the corner's, per tile size (a suite's tiles share a few sizes). */
const radii = new Map<string, Float64Array>();
function radiusOf(w: number, h: number): Float64Array {
  const key = `${w}x${h}`;
  let r = radii.get(key);
  if (!r) {
    const cx = (w - 1) / 2;
    const cy = (h - 1) / 2;
    const rMax = Math.hypot(cx, cy) || 1;
    r = new Float64Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) r[y * w + x] = Math.hypot(x - cx, y - cy) / rMax;
    if (radii.size >= 8) radii.delete(radii.keys().next().value!);
    radii.set(key, r);
  }
  return r;
}

/**
 * Applies a profile to a tile at the given microns per pixel. With `rescan`, the acquisition also varies
 * as the profile's rescan section says (a precision study's repeated scans of the same glass).
 */
export async function simulateScanner(
  input: RgbImage,
  profile: ScannerProfile,
  mpp: number,
  rng: Rng,
  options: { rescan?: boolean } = {},
): Promise<RgbImage> {
  // Draw every random number first: results must not depend on the await schedule.
  const angle = rng.uniform(0, 2 * Math.PI);
  const noiseRng = rng.fork('noise');
  const scan = acquisition(profile, rng, options.rescan ?? false);
  let img = input;
  if (profile.scanMpp > mpp * 1.01) img = await resampleThrough(img, mpp / profile.scanMpp);
  if (scan.defocusUm > 0) img = await defocusBlur(img, scan.defocusUm / mpp, 0);
  if (profile.optics.blurUm > 0) img = await gaussianBlur(img, profile.optics.blurUm / mpp);
  const { width: w, height: h } = img;
  const out = createImage(w, h, 0);
  const { matrix: m, gamma, black, white } = profile.colour;
  const { vignette, gradient } = profile.illumination;
  const { fullWellPhotons, readSigma } = profile.noise;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const rMax = Math.hypot(cx, cy) || 1;
  const gx = Math.cos(angle);
  const gy = Math.sin(angle);
  // Even illumination is the gain itself (the synthetic slides' writer zeroes both terms per tile).
  const radius = vignette === 0 && gradient === 0 ? undefined : radiusOf(w, h);
  const [m0, m1, m2] = m;
  const tone = (o: number) => {
    o = (o * 255 - black) / (white - black);
    return o <= 0 ? 0 : o >= 1 ? 1 : gamma === 1 ? o : o ** gamma;
  };
  const sensor = (s: number) => {
    if (fullWellPhotons > 0) s = (poisson((s / 255) * fullWellPhotons, noiseRng) / fullWellPhotons) * 255;
    if (readSigma > 0) s += readSigma * noiseRng.normal();
    return Math.max(0, Math.min(255, s)) / 255;
  };
  const data = img.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      let light = scan.gain;
      if (radius) {
        const rr = radius[y * w + x];
        const ramp = ((x - cx) * gx + (y - cy) * gy) / rMax;
        light = scan.gain * (1 - vignette * rr * rr) * (1 + (gradient / 2) * ramp);
      }
      // Channel by channel in this order: the noise stream is drawn as it always was.
      const v0 = sensor(data[i] * light);
      const v1 = sensor(data[i + 1] * light);
      const v2 = sensor(data[i + 2] * light);
      out.data[i] = clampByte(tone(m0[0] * v0 + m0[1] * v1 + m0[2] * v2) * 255);
      out.data[i + 1] = clampByte(tone(m1[0] * v0 + m1[1] * v1 + m1[2] * v2) * 255);
      out.data[i + 2] = clampByte(tone(m2[0] * v0 + m2[1] * v1 + m2[2] * v2) * 255);
    }
  }
  return scan.jpegQuality < 100 ? jpegCorruption(out, scan.jpegQuality, 'simulated') : out;
}

defineTransform({
  name: 'scanner',
  kind: 'scanner',
  description:
    'Simulates a scanner profile (shipped name or YAML path) on a tile of the given mpp: resampling, optics, illumination, Poisson-Gaussian noise, colour matrix and tone, JPEG',
  schema: z.object({ profile: z.string().default('neutral-reference'), mpp: z.number().positive().default(0.5) }),
  make: (p) => {
    const profile = loadScannerProfile(p.profile);
    return (img: RgbImage, rng: Rng) => simulateScanner(img, profile, p.mpp, rng);
  },
});
