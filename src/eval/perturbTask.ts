import { transformFromSpec, type Transform } from '../augment/index.ts';
import { createRng, type RgbImage } from '../core/index.ts';

/** A batch of same-size tiles to perturb, with one seed per tile: what a perturbation worker receives. */
export interface PerturbTask {
  width: number;
  height: number;
  /** The tiles' RGB bytes back to back. */
  pixels: Uint8Array;
  transform: Record<string, unknown>;
  condition: string;
  seeds: string[];
}

const transforms = new Map<string, Transform>();

function transformOf(spec: Record<string, unknown>, condition: string): Transform {
  const key = `${condition}\n${JSON.stringify(spec)}`;
  let t = transforms.get(key);
  if (!t) {
    t = transformFromSpec(spec, condition);
    transforms.set(key, t);
  }
  return t;
}

/** Perturbs each tile with its own seed; the same bytes whichever thread runs it. */
export async function perturbImages(
  images: readonly RgbImage[],
  spec: Record<string, unknown>,
  condition: string,
  seeds: readonly string[],
  timing?: { ms: number },
): Promise<RgbImage[]> {
  const t = transformOf(spec, condition);
  const out: RgbImage[] = [];
  for (let i = 0; i < images.length; i++) {
    // Timed around the call only: awaiting lets other work run, which is not this transform's time.
    const t0 = performance.now();
    const pending = t.apply(images[i], createRng(seeds[i]));
    if (timing) timing.ms += performance.now() - t0;
    const r = await pending;
    if (r.width !== images[i].width || r.height !== images[i].height) throw new Error(`${condition}: the transform changed the tile size`);
    out.push(r);
  }
  return out;
}

/** A worker's task: the tiles arrive back to back in one buffer and leave the same way. */
export async function perturbBatch(task: PerturbTask): Promise<Uint8Array> {
  const per = task.width * task.height * 3;
  const images = task.seeds.map((_, i) => ({ width: task.width, height: task.height, data: task.pixels.subarray(i * per, (i + 1) * per) }));
  const out = new Uint8Array(task.pixels.length);
  (await perturbImages(images, task.transform, task.condition, task.seeds)).forEach((img, i) => out.set(img.data, i * per));
  return out;
}
