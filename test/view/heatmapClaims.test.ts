import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSynthetic } from '../../src/synth/index.ts';
import { fit, parseTrainConfig } from '../../src/train/index.ts';
import { filesUnder, runCli, tempDir, threeProcessesOneKilled } from '../helpers.ts';

const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const dir = tempDir();
const model = join(dir, 'model');
let manifest = '';
const SLIDES = 8;

const heatmap = (out: string, ...extra: string[]) => ['heatmap', '--model', model, '--manifest', manifest, '--out', out, ...extra];

beforeAll(async () => {
  ({ manifest } = await generateSynthetic({
    task: 'prostate',
    slides: SLIDES,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0,
    seed: 6,
  }));
  const tiled = await runCli([
    'tile',
    '--manifest',
    manifest,
    '--out',
    join(dir, 'tiles'),
    '--tile-size',
    '64',
    '--mpp',
    '1',
    '--min-tissue',
    '0.3',
  ]);
  expect(tiled.code, tiled.stderr).toBe(0);
  const config = parseTrainConfig(
    {
      name: 'heatmap-claims',
      task: 'prostate',
      data: { dataset: join(dir, 'tiles'), folds: 3 },
      model: { backbone: 'resnet', width: 0.25, inputSize: 32 },
      train: { epochs: 1, batchSize: 8, tilesPerEpoch: 16, valTilesPerSlide: 2, workers: 0, replicas: 1 },
      backend: 'wasm',
      seed: 2,
    },
    'heatmap-claims',
  );
  await fit(config, { out: model });
  const single = spawnSync(process.execPath, [bin, ...heatmap(join(dir, 'single'))], { encoding: 'utf8' });
  expect(single.status, single.stderr).toBe(0);
}, 600_000);

describe('heatmaps of one folder from several processes', () => {
  it("three processes, one killed mid-slide: the heatmaps and their index are byte for byte a single process's", async () => {
    const out = join(dir, 'shared');
    const [killed, ...rest] = await threeProcessesOneKilled(bin, heatmap(out), out);
    expect(killed.signal).toBe('SIGKILL');
    for (const r of rest) expect(r.code, r.stderr).toBe(0);
    const single = filesUnder(join(dir, 'single'));
    const shared = filesUnder(out);
    expect([...single.keys()].filter((f) => f.endsWith('heatmap.json'))).toHaveLength(SLIDES);
    expect([...shared.keys()].sort()).toEqual([...single.keys()].sort());
    for (const [f, bytes] of single) expect(shared.get(f)!.equals(bytes), f).toBe(true);
  }, 300_000);

  it('a rerun maps nothing twice, heatmaps of no recorded run are remade; other settings, and a finish before the work is done, are one line and exit 2', async () => {
    const out = join(dir, 'single');
    const before = statSync(join(out, 'p0000', 'heatmap.json')).mtimeMs;
    const again = await runCli(heatmap(out));
    expect(again.code, again.stderr).toBe(0);
    expect(statSync(join(out, 'p0000', 'heatmap.json')).mtimeMs).toBe(before);
    const other = await runCli(heatmap(out, '--stride', '32'));
    expect([other.code, other.stderr.trim().split('\n')]).toEqual([
      2,
      [`gradelab: ${out}: holds heatmaps of another model or other settings (heatmap-run.json); choose a new --out or remove it`],
    ]);
    // A folder of heatmaps that records no run (an older gradelab's, or a run's whose record was
    // removed): none of them is trusted, every slide is mapped again.
    const legacy = join(dir, 'legacy');
    cpSync(out, legacy, { recursive: true });
    rmSync(join(legacy, 'heatmap-run.json'));
    const stale = join(legacy, 'p0000', 'heatmap.json');
    writeFileSync(stale, JSON.stringify({ ...JSON.parse(readFileSync(stale, 'utf8')), referralPriority: 99 }));
    const remapped = await runCli(heatmap(legacy));
    expect(remapped.code, remapped.stderr).toBe(0);
    expect(readFileSync(stale).equals(readFileSync(join(out, 'p0000', 'heatmap.json')))).toBe(true);
    expect(readFileSync(join(legacy, 'index.json')).equals(readFileSync(join(out, 'index.json')))).toBe(true);
    const early = await runCli(heatmap(join(dir, 'not-yet'), '--finish'));
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(new RegExp(`not-yet: ${SLIDES} slides are not mapped yet: p0000 \\(not started\\), `));
    expect(existsSync(join(dir, 'not-yet', 'index.json'))).toBe(false);
  });
});
