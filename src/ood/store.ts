import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, writeFileAtomic } from '../core/index.ts';
import { createDetector, type OodDetector } from './detectors.ts';

export interface StoredDetector {
  name: string;
  params: Record<string, number>;
  /** Tile-level threshold accepting `accept` of in-distribution validation tiles. */
  threshold: number;
  /** Slide-level threshold on top-k aggregated scores, calibrated the same way. */
  slideThreshold: number;
  json: Record<string, unknown>;
  arrays: Record<string, string>;
}

export interface OodBundle {
  format: 'gradelab-ood/1';
  accept: number;
  /** The detector whose scores gradelab predict writes as ood_score / ood_flag. */
  primary: string;
  aggregation: { method: 'topk'; k: number };
  detectors: StoredDetector[];
}

export async function saveOodBundle(modelDir: string, bundle: Omit<OodBundle, 'detectors'>, fitted: { detector: OodDetector; params: Record<string, number>; threshold: number; slideThreshold: number }[]): Promise<void> {
  const dir = join(modelDir, 'ood');
  await mkdir(dir, { recursive: true });
  const detectors: StoredDetector[] = [];
  for (const f of fitted) {
    const { json, arrays } = f.detector.state();
    const files: Record<string, string> = {};
    for (const [key, arr] of Object.entries(arrays)) {
      const file = `${f.detector.name}-${key}.f32`;
      await writeFileAtomic(join(dir, file), new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
      files[key] = file;
    }
    detectors.push({ name: f.detector.name, params: f.params, threshold: f.threshold, slideThreshold: f.slideThreshold, json, arrays: files });
  }
  await writeFileAtomic(join(dir, 'detectors.json'), JSON.stringify({ ...bundle, detectors } satisfies OodBundle, null, 2));
}

export function hasOodBundle(modelDir: string): boolean {
  return existsSync(join(modelDir, 'ood', 'detectors.json'));
}

export function loadOodBundle(modelDir: string): { bundle: OodBundle; detectors: Map<string, OodDetector> } {
  const dir = join(modelDir, 'ood');
  const p = join(dir, 'detectors.json');
  if (!existsSync(p)) throw new InputError(`${modelDir}: no fitted OOD detector (run \`gradelab ood fit --model ${modelDir} --data DATASET\`)`);
  const bundle = JSON.parse(readFileSync(p, 'utf8')) as OodBundle;
  const detectors = new Map<string, OodDetector>();
  for (const s of bundle.detectors) {
    const d = createDetector(s.name, s.params);
    const arrays: Record<string, Float32Array> = {};
    for (const [key, file] of Object.entries(s.arrays)) {
      const b = readFileSync(join(dir, file));
      arrays[key] = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
    d.load(s.json, arrays);
    detectors.set(s.name, d);
  }
  return { bundle, detectors };
}
