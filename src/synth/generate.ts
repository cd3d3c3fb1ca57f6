import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { stringify } from 'csv-stringify/sync';
import { ConfigError, workerEntry, writeFileAtomic, type Task } from '../core/index.ts';
import { designSlides, type SynthOptions, type SynthSlide } from './design.ts';
import { NEAR_OOD } from './scene.ts';
import { renderSlide } from './writeSlide.ts';

export const SYNTH_MANIFEST = 'manifest.csv';

function manifestRows(task: Task, slides: SynthSlide[]): string[][] {
  if (task === 'prostate') {
    return [
      ['image_id', 'data_provider', 'isup_grade', 'gleason_score', 'path', 'mask_path', 'patient_id', 'site', 'scanner', 'anomaly', 'ood'],
      ...slides.map((s) => [
        s.id,
        s.site,
        String(s.grade),
        s.gleason!,
        s.path,
        s.maskPath,
        s.patientId,
        s.site,
        s.scanner,
        s.anomaly,
        s.anomaly ? (NEAR_OOD.includes(s.anomaly) ? 'near' : 'far') : '',
      ]),
    ];
  }
  return [
    [
      'image_id',
      'path',
      'mask_path',
      'patient_id',
      'site',
      'scanner',
      'nottingham_grade',
      'tubules',
      'pleomorphism',
      'mitoses',
      'anomaly',
      'ood',
    ],
    ...slides.map((s) => [
      s.id,
      s.path,
      s.maskPath,
      s.patientId,
      s.site,
      s.scanner,
      String(s.grade),
      String(s.tubules),
      String(s.pleomorphism),
      String(s.mitoses),
      s.anomaly,
      s.anomaly ? (NEAR_OOD.includes(s.anomaly) ? 'near' : 'far') : '',
    ]),
  ];
}

/**
 * Generates a synthetic dataset: slides/ (pyramidal JPEG TIFF or SVS), masks/ (label masks), and
 * manifest.csv. Deterministic per seed; slides already present from the same settings are kept, so
 * an interrupted run resumes.
 */
export async function generateSynthetic(options: SynthOptions): Promise<{ manifest: string; slides: SynthSlide[] }> {
  const slides = designSlides(options);
  await mkdir(options.out, { recursive: true });
  const settings = JSON.stringify({
    task: options.task,
    slides: options.slides,
    sites: options.sites ?? 3,
    siteNames: options.siteNames ?? null,
    size: options.size ?? 2048,
    mpp: options.mpp ?? 0.5,
    anomalies: options.anomalies ?? 0.1,
    anomalyKinds: options.anomalyKinds ?? null,
    lookAlikeStains: options.lookAlikeStains ?? 'matched',
    seed: options.seed ?? 1,
    format: options.format ?? 'tiff',
  });
  const settingsPath = join(options.out, 'synth.json');
  if (existsSync(settingsPath) && readFileSync(settingsPath, 'utf8') !== settings) {
    throw new ConfigError(`${options.out} already holds synthetic slides made with other settings; choose a new --out or remove it`);
  }
  await writeFileAtomic(settingsPath, settings);
  let done = 0;
  const pending = slides.filter((s) => !(existsSync(join(options.out, s.path)) && existsSync(join(options.out, s.maskPath))));
  for (const s of slides) if (!pending.includes(s)) options.onSlide?.(++done, slides.length, s.id, 0);
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1))
    throw new ConfigError(`--workers must be a positive integer, got ${options.workers}`);
  const workers = Math.min(options.workers ?? availableParallelism(), pending.length);
  if (workers > 1) {
    // Slides are independent and each is deterministic from its own seed: render several at once.
    const pool = new Piscina({
      filename: workerEntry(import.meta.url, 'renderWorker'),
      minThreads: workers,
      maxThreads: workers,
    });
    try {
      await Promise.all(
        pending.map(async (s) => {
          const tiles = (await pool.run({ slide: s, out: options.out, format: options.format })) as number;
          options.onSlide?.(++done, slides.length, s.id, tiles);
        }),
      );
    } finally {
      await pool.destroy();
    }
  } else {
    for (const s of pending) {
      const tiles = await renderSlide(s, options.out, { format: options.format, onTile: options.onTile });
      options.onSlide?.(++done, slides.length, s.id, tiles);
    }
  }
  const manifest = join(options.out, SYNTH_MANIFEST);
  await writeFileAtomic(manifest, stringify(manifestRows(options.task, slides)));
  return { manifest, slides };
}
