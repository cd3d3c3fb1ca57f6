import { Piscina } from 'piscina';
import { workerEntry, type RgbImage } from '../core/index.ts';
import { perturbImages, type PerturbTask } from './perturbTask.ts';

/**
 * Runs a suite's perturbations: in worker threads (piscina) so they proceed while the main thread scores
 * other batches, or inline with `workers: 0`. Each tile's result depends only on its seed, so both give
 * the same bytes. The worker appends its elapsed milliseconds (float64) after the pixels, which is how
 * thread time is accounted without a second message.
 */
export class Perturber {
  private pool: Piscina | undefined;
  private ms = 0;
  readonly threads: number;

  constructor(workers: number) {
    this.threads = workers;
    if (workers > 0) {
      this.pool = new Piscina({
        filename: workerEntry(import.meta.url, 'perturbWorker'),
        minThreads: workers,
        maxThreads: workers,
        idleTimeout: 30_000,
      });
      this.pool.on('error', () => undefined);
    }
  }

  async run(
    images: readonly RgbImage[],
    unit: { condition: string; transform?: Record<string, unknown> },
    seeds: string[],
  ): Promise<RgbImage[]> {
    if (!this.pool) {
      const timing = { ms: 0 };
      const out = await perturbImages(images, unit.transform!, unit.condition, seeds, timing);
      this.ms += timing.ms;
      return out;
    }
    const { width, height } = images[0];
    const per = width * height * 3;
    const pixels = new Uint8Array(images.length * per);
    images.forEach((img, i) => pixels.set(img.data, i * per));
    const task: PerturbTask = { width, height, pixels, transform: unit.transform!, condition: unit.condition, seeds };
    const r = (await this.pool.run(task)) as Uint8Array;
    const out = r.subarray(0, pixels.length);
    this.ms += new DataView(r.buffer, r.byteOffset + pixels.length, 8).getFloat64(0, true);
    return images.map((_, i) => ({ width, height, data: out.subarray(i * per, (i + 1) * per) }));
  }

  /** Thread time spent perturbing since the last call. */
  takeMs(): number {
    const v = this.ms;
    this.ms = 0;
    return v;
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
    this.pool = undefined;
  }
}
