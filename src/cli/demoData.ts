import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GradelabError, log } from '../core/index.ts';
import { isTileDataset } from '../data/index.ts';
import type { DemoPlan } from './demoPlan.ts';

type Main = (args: string[]) => Promise<number>;

/** Where the demo puts things, shared by its stages. */
export interface DemoContext {
  main: Main;
  plan: DemoPlan;
  out: string;
  /** --tracking-dir for the commands whose runs the demo tracks. */
  tracking: string[];
  data: string;
  siteData: string;
  heldOut: string;
}

/** Runs one CLI step in-process; exit code 3 (a failed acceptance criterion) is a result, not an error. */
export async function step(main: Main, title: string, args: string[], allow: number[] = [0]): Promise<number> {
  log.info(`\n== ${title}`);
  const t0 = performance.now();
  const code = await main(args);
  log.info(`(${title}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  if (!allow.includes(code)) throw new GradelabError(`demo step "${title}" failed (exit ${code})`);
  return code;
}

/** Slides and tiles: three training sites, a held-out set of new patients, an unseen fourth site; the patient split. */
export async function makeDemoData(ctx: DemoContext): Promise<void> {
  const { main, plan, out, data, siteData, heldOut } = ctx;
  const tiling = [
    ...['--tile-size', '128', '--mpp', '1.0', '--stride', '64', '--min-tissue', '0.5'],
    // Pattern models learn from the masks' patterns (and the held-out set's give pattern agreement).
    ...(plan.patterns ? ['--mask-scheme', 'gradelab'] : []),
  ];
  // Slides and tiles: three training sites, then an unseen site with another stain protocol and scanner.
  if (!isTileDataset(data)) {
    await step(main, 'synthetic slides (sites A-C)', [
      'synth',
      '--task',
      'prostate',
      '--slides',
      String(plan.slides),
      '--size',
      String(plan.size),
      '--sites',
      '3',
      '--anomalies',
      '0.15',
      '--seed',
      '5',
      '--out',
      join(out, 'slides'),
    ]);
    await step(main, 'tiles', ['tile', '--manifest', join(out, 'slides', 'manifest.csv'), '--out', data, ...tiling]);
  }
  // The held-out set and the unseen site are only ever predicted, so they can be large enough for
  // narrow intervals; 1024 px slides (smaller biopsies) keep their making quick.
  if (!isTileDataset(heldOut)) {
    await step(main, 'a held-out test set (sites A-C, new patients)', [
      'synth',
      '--task',
      'prostate',
      '--slides',
      String(plan.testSlides),
      '--size',
      '1024',
      '--sites',
      '3',
      '--anomalies',
      '0.2',
      '--seed',
      '23',
      '--out',
      join(out, 'held-out-slides'),
    ]);
    await step(main, 'tiles of the held-out set', [
      'tile',
      '--manifest',
      join(out, 'held-out-slides', 'manifest.csv'),
      '--out',
      heldOut,
      ...tiling,
    ]);
  }
  if (!isTileDataset(siteData)) {
    await step(main, 'an unseen site (site-D)', [
      'synth',
      '--task',
      'prostate',
      '--slides',
      String(plan.siteSlides),
      '--size',
      '1024',
      '--site',
      'site-D',
      '--anomalies',
      '0',
      '--seed',
      '11',
      '--out',
      join(out, 'site-D-slides'),
    ]);
    await step(main, 'tiles of the unseen site', [
      'tile',
      '--manifest',
      join(out, 'site-D-slides', 'manifest.csv'),
      '--out',
      siteData,
      ...tiling,
    ]);
  }
  if (!existsSync(join(data, 'splits.json'))) await step(main, 'patient split', ['split', data, '--folds', '5', '--seed', '1']);
}
