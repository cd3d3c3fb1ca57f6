import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { buildPipeline, STANDARD_TRAINING_PIPELINE, type PipelineSpec } from '../src/augment/index.ts';
import { createRng, type RgbImage } from '../src/core/index.ts';
import { openSlide } from '../src/data/index.ts';
import { cached, exists, fmt, hasPython, header } from './common.ts';
import { writeBenchSlide } from './slideContent.ts';

/**
 * The standard training pipeline on 256x256 tiles, one core: gradelab against the same operations in
 * NumPy + scikit-image (+ Pillow for JPEG) on the same tiles in the same run. Reported per CPU-second
 * as well as per wall-second, since sharp runs its part on libuv's thread pool.
 */
export async function benchAugment(): Promise<void> {
  header('Standard training pipeline on 256x256 tiles (flips, rot90, HED-light, brightness, contrast, blur p=.5, JPEG p=.5), one core');
  sharp.concurrency(1);
  const slidePath = cached('regions-6144.tiff');
  if (!exists(slidePath)) await writeBenchSlide(slidePath, 6144, 4, 0.5);
  const slide = await openSlide(slidePath);
  const tiles: RgbImage[] = [];
  for (let i = 0; i < 64; i++) tiles.push(await slide.readRegion(0, 1024 + (i % 8) * 256, 1024 + Math.floor(i / 8) * 256, 256, 256));
  await slide.close();
  const tilesPath = cached('augment-tiles.bin');
  writeFileSync(tilesPath, Buffer.concat(tiles.map((t) => Buffer.from(t.data))));

  // The standard pipeline, and the same with JPEG through the real codec (sharp) instead of the
  // simulation of libjpeg's lossy stages, so the figure does not rest on the simulation alone.
  const rounds = 8;
  const measure = async (spec: PipelineSpec) => {
    const pipeline = buildPipeline(spec);
    for (let i = 0; i < tiles.length; i++) await pipeline.apply(tiles[i], createRng(`warm${i}`));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < tiles.length; i++) await pipeline.apply(tiles[i], createRng(`${r}/${i}`));
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const n = rounds * tiles.length;
    return { wall: n / wall, cpu: n / ((cpu.user + cpu.system) / 1e6) };
  };
  const ours = await measure(STANDARD_TRAINING_PIPELINE);
  const oursLibjpeg = await measure(STANDARD_TRAINING_PIPELINE.map((s) => (s.name === 'jpeg' ? { ...s, codec: 'libjpeg' } : s)));

  let ref: { wall: number; cpu: number } | undefined;
  if (hasPython('skimage') && hasPython('PIL')) {
    const script = `
import io, os, sys, time, json
import numpy as np
from PIL import Image
from skimage.color import rgb2hed, hed2rgb
from skimage.filters import gaussian
raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 256, 256, 3)
rounds = int(sys.argv[2])
rng = np.random.default_rng(1)
def pipeline(t):
    if rng.random() < 0.5: t = t[:, ::-1]
    if rng.random() < 0.5: t = t[::-1]
    t = np.rot90(t, rng.integers(4))
    hed = rgb2hed(t)
    hed = hed * rng.uniform(0.95, 1.05, 3) + rng.uniform(-0.05, 0.05, 3)
    f = hed2rgb(hed)
    f = f + rng.uniform(-0.1, 0.1)
    f = (f - 0.5) * rng.uniform(0.9, 1.1) + 0.5
    if rng.random() < 0.5: f = gaussian(f, sigma=1, channel_axis=-1)
    u8 = (np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.5:
        b = io.BytesIO(); Image.fromarray(u8).save(b, format='JPEG', quality=80); b.seek(0)
        u8 = np.asarray(Image.open(b).convert('RGB'))
    return u8
for t in raw: pipeline(t)
c0 = time.process_time(); w0 = time.perf_counter()
for r in range(rounds):
    for t in raw: pipeline(t)
n = rounds * len(raw)
print(json.dumps({'wall': n / (time.perf_counter() - w0), 'cpu': n / (time.process_time() - c0)}))`;
    const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    ref = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, tilesPath, String(rounds)], { encoding: 'utf8', env }));
  }
  process.stdout.write(`gradelab: ${fmt(ours.wall)} tiles/s wall, ${fmt(ours.cpu)} tiles per CPU-second\n`);
  process.stdout.write(
    `gradelab, jpeg codec libjpeg (sharp): ${fmt(oursLibjpeg.wall)} tiles/s wall, ${fmt(oursLibjpeg.cpu)} tiles per CPU-second\n`,
  );
  if (ref) {
    process.stdout.write(`NumPy + scikit-image + Pillow: ${fmt(ref.wall)} tiles/s wall, ${fmt(ref.cpu)} tiles per CPU-second\n`);
    process.stdout.write(
      `ratio: ${fmt(ours.wall / ref.wall, 2)}x wall, ${fmt(ours.cpu / ref.cpu, 2)}x per CPU-second (target 2x); with the libjpeg codec ${fmt(oursLibjpeg.cpu / ref.cpu, 2)}x per CPU-second\n`,
    );
  } else {
    process.stdout.write('reference not run: apt-get install python3-skimage python3-pil\n');
  }
}
