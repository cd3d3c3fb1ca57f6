import { rmSync } from 'node:fs';
import { designSlides, renderSlide } from '../src/synth/index.ts';
import { cached, fmt, header } from './common.ts';

/** Seconds to render and write one 10,000 x 10,000 synthetic slide (pyramidal JPEG TIFF + mask). */
export async function benchSynth(): Promise<void> {
  header('Synthetic slide generation: one 10,000 x 10,000 breast slide (level 0 at 0.5 um/px), and a quick-demo set');
  const out = cached('synth-bench');
  rmSync(out, { recursive: true, force: true });
  const [slide] = designSlides({ task: 'breast', slides: 1, out, size: 10_000, sites: 1, anomalies: 0, seed: 1 });
  let t0 = performance.now();
  const tiles = await renderSlide(slide, out);
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`10,000 x 10,000: ${fmt(secs)} s (${tiles} tiles, ${fmt(tiles / secs)} tiles/s, ${fmt(100 / secs)} MP/s)\n`);
  const quick = designSlides({ task: 'prostate', slides: 36, out, size: 1024, sites: 3, anomalies: 0.15, seed: 2 });
  t0 = performance.now();
  for (const s of quick) await renderSlide(s, out);
  process.stdout.write(`36 slides of 1024 x 512 (a quick demo's set): ${fmt((performance.now() - t0) / 1000)} s\n`);
  rmSync(out, { recursive: true, force: true });
}
