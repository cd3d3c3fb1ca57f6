import sharp from 'sharp';

/**
 * A bench slide: tissue-like texture (haematoxylin speckle on eosin, on white glass with a few large
 * tissue regions) written by libvips as a JPEG pyramidal TIFF, like PANDA's files. The texture is made
 * at 1/scale and upsampled so a 50,000-pixel slide is produced in bounded memory and a minute or two.
 */
export async function writeBenchSlide(path: string, side: number, scale: number, mpp: number): Promise<void> {
  const base = Math.ceil(side / scale);
  const data = new Uint8Array(base * base * 3);
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const blobs = Array.from({ length: 6 }, () => ({ cx: rand() * base, cy: rand() * base, r: (0.12 + rand() * 0.15) * base }));
  for (let y = 0; y < base; y++) {
    for (let x = 0; x < base; x++) {
      const i = (y * base + x) * 3;
      const inside = blobs.some((b) => (x - b.cx) ** 2 + (y - b.cy) ** 2 < b.r * b.r);
      if (!inside) {
        data[i] = 244 + Math.floor(rand() * 4);
        data[i + 1] = 243 + Math.floor(rand() * 4);
        data[i + 2] = 241 + Math.floor(rand() * 4);
        continue;
      }
      const nucleus = rand() < 0.15;
      const t = rand();
      data[i] = nucleus ? 90 + 40 * t : 215 + 25 * t;
      data[i + 1] = nucleus ? 60 + 30 * t : 140 + 40 * t;
      data[i + 2] = nucleus ? 150 + 40 * t : 190 + 30 * t;
    }
  }
  await sharp(data, { raw: { width: base, height: base, channels: 3 } })
    .resize(side, side, { kernel: 'cubic' })
    .tiff({
      tile: true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: true,
      compression: 'jpeg',
      quality: 80,
      bigtiff: side > 30000,
      xres: 1000 / mpp,
      yres: 1000 / mpp,
      resolutionUnit: 'cm',
    })
    .toFile(path);
}
