import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, smoothImage, tempDir, tileTableCsv } from '../helpers.ts';
import { discImage, writeSharpPyramid, writeTestSvs } from '../data/fixtures.ts';

const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const dir = tempDir();

/** The CLI in this process (one real process start is checked below, with --help). */
function gradelab(...args: string[]) {
  return runCli(args, { cwd: dir, env: { GRADELAB_LOG: 'info' } });
}

beforeAll(async () => {
  await writeTestSvs(join(dir, 'a.svs'), smoothImage(700, 500));
  for (let i = 0; i < 4; i++)
    await writeSharpPyramid(join(dir, `s${i}.tiff`), discImage(800, 600, [{ cx: 400, cy: 300, r: 260 }]), { mpp: 0.5 });
  writeFileSync(
    join(dir, 'm.csv'),
    `path,patient_id,site,isup_grade\n${[0, 1, 2, 3].map((i) => `s${i}.tiff,p${i},site${i % 2},${i}`).join('\n')}\n`,
  );
});

describe('gradelab CLI', () => {
  it('the installed command starts as its own process', () => {
    const r = spawnSync(process.execPath, [bin, 'tile', '--help'], { encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Options:/);
  });

  it('has --help on every command', async () => {
    for (const cmd of [[], ['slide', 'info'], ['slide', 'region'], ['tile'], ['split'], ['dataset', 'info'], ['demo']]) {
      const r = await gradelab(...cmd, '--help');
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Options:/);
    }
  });

  it('commands that run no model load neither TensorFlow.js nor ONNX Runtime (an import hook lists what loaded)', () => {
    const hook = fileURLToPath(new URL('../../bench/importLog.mjs', import.meta.url));
    const loaded = (...args: string[]) => {
      const log = join(dir, 'imports.log');
      writeFileSync(log, '');
      const r = spawnSync(process.execPath, ['--import', hook, bin, ...args], {
        cwd: dir,
        env: { ...process.env, GRADELAB_IMPORT_LOG: log },
      });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return readFileSync(log, 'utf8');
    };
    const heavy = /node_modules\/(onnxruntime-node|@tensorflow)\//;
    for (const args of [
      ['--help'],
      ['slide', 'info', 'a.svs'],
      ['predict', '--help'],
      ['eval', '--help'],
      ['ood', 'fit', '--help'],
      ['mil', 'fit', '--help'],
    ])
      expect(loaded(...args), args.join(' ')).not.toMatch(heavy);
    // The hook does see ONNX Runtime when something imports it: the checks above could fail.
    const log = join(dir, 'imports-ort.log');
    const root = fileURLToPath(new URL('../..', import.meta.url));
    spawnSync(process.execPath, ['--import', hook, '--input-type=module', '-e', "await import('onnxruntime-node')"], {
      cwd: root,
      env: { ...process.env, GRADELAB_IMPORT_LOG: log },
    });
    expect(readFileSync(log, 'utf8')).toMatch(heavy);
  });

  it('slide info prints levels, mpp, vendor and associated images (text and JSON)', async () => {
    const r = await gradelab('slide', 'info', 'a.svs', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.vendor).toBe('aperio');
    expect(info.levels[0]).toEqual({ width: 700, height: 500, downsample: 1 });
    expect(info.associatedImages).toContain('label');
    expect(info.objectivePower).toBe(40);
    const t = await gradelab('slide', 'info', 'a.svs');
    expect(t.stdout).toMatch(/vendor: aperio/);
    expect(t.stdout).toMatch(/level\s+width\s+height\s+downsample/);
  });

  it('slide region writes a PNG of the requested size', async () => {
    const r = await gradelab(
      'slide',
      'region',
      'a.svs',
      '--level',
      '1',
      '--x',
      '100',
      '--y',
      '40',
      '--width',
      '60',
      '--height',
      '30',
      '--out',
      'r.png',
    );
    expect(r.code).toBe(0);
    const meta = await sharp(join(dir, 'r.png')).metadata();
    expect([meta.width, meta.height]).toEqual([60, 30]);
  });

  it('tile, split and dataset info from a manifest', async () => {
    const t = await gradelab('tile', '--manifest', 'm.csv', '--out', 'ds', '--tile-size', '64', '--mpp', '1', '--min-tissue', '0.5');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/tiles from 4 slides/);
    expect(existsSync(join(dir, 'ds', 'tiles.parquet'))).toBe(true);
    const s = await gradelab('split', 'ds', '--folds', '2', '--seed', '1');
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/fold\s+patients\s+slides\s+tiles/);
    const i = await gradelab('dataset', 'info', 'ds', '--json');
    expect(i.code, i.stderr).toBe(0);
    const info = JSON.parse(i.stdout);
    expect(info.slides).toBe(4);
    expect(info.patients).toBe(4);
    expect(info.split.folds).toBe(2);
    expect(Object.keys(info.bySite)).toEqual(['site0', 'site1']);
    const loso = await gradelab('split', 'ds', '--by', 'site');
    expect(loso.code, loso.stderr).toBe(0);
    expect(loso.stdout).toMatch(/site0/);
  });

  it('compare: two runs per arm, the interval it reports, a forest chart, no charting warnings', async () => {
    const csv = (shift: number) =>
      `slide_id,patient_id,site,scanner,label,pred,prob_0,prob_1,prob_2\n${Array.from({ length: 24 }, (_, i) => {
        const pred = (i + shift) % 5 === 0 ? (i + 1) % 3 : i % 3;
        const probs = [0, 1, 2].map((c) => (c === pred ? 0.8 : 0.1));
        return `s${i},p${i},a,x,${i % 3},${pred},${probs.join(',')}`;
      }).join('\n')}\n`;
    for (const [name, shift] of [
      ['a1', 0],
      ['a2', 1],
      ['b1', 2],
      ['b2', 3],
    ] as const)
      writeFileSync(join(dir, `${name}.csv`), csv(shift));
    const r = await gradelab('compare', '--pred', 'a1.csv,a2.csv', '--pred', 'b1.csv,b2.csv', '--out', 'cmp');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warn/i);
    expect(readFileSync(join(dir, 'cmp', 'compare.md'), 'utf8')).toContain('mean of its training runs (2 and 2)');
    expect(JSON.parse(readFileSync(join(dir, 'cmp', 'compare.json'), 'utf8'))).toMatchObject({ runsA: 2, runsB: 2, slides: 24 });
    expect(existsSync(join(dir, 'cmp', 'compare-forest.png'))).toBe(true);
  });

  it('names the slides that gave no tile (they would leave training and evaluation silently)', async () => {
    await writeSharpPyramid(join(dir, 'glass.tiff'), discImage(800, 600, []), { mpp: 0.5 });
    writeFileSync(join(dir, 'm-glass.csv'), `${readFileSync(join(dir, 'm.csv'), 'utf8')}glass.tiff,p9,site0,2\n`);
    const t = await gradelab('tile', '--manifest', 'm-glass.csv', '--out', 'ds-glass', '--tile-size', '64', '--mpp', '1');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(
      /warning: 1 slide gave no tile with 0\.5 tissue \(not in the dataset, so never trained on or evaluated\): glass\n/,
    );
    expect(await tileTableCsv(join(dir, 'ds-glass'))).not.toMatch(/^glass,/m);
  });

  it('bad input: one line naming the file, exit 2, nothing half-written', async () => {
    writeFileSync(join(dir, 'bad.csv'), 'path,isup_grade\ns0.tiff,7\n');
    const cases: [string[], RegExp][] = [
      [['slide', 'info', 'missing.svs'], /missing\.svs: file not found/],
      [['slide', 'info', 'm.csv'], /m\.csv: not a slide/],
      [['tile', '--manifest', 'bad.csv', '--out', 'bad-ds'], /bad\.csv, row 2: isup_grade "7"/],
      [['tile', '--manifest', 'm.csv', '--out', 'ds2', '--min-tissue', '3'], /--min-tissue must be between 0 and 1/],
      [['dataset', 'info', 'nowhere'], /nowhere: dataset folder does not exist/],
      [['split', 'ds', '--folds', '9'], /cannot make 9 folds from 4 patients/],
      [['slide', 'region', 'a.svs', '--x', '0', '--y', '0', '--width', '0', '--height', '5', '--out', 'z.png'], /positive integers/],
      [['nonsense'], /Unknown argument/],
    ];
    for (const [args, pattern] of cases) {
      const r = await gradelab(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, 'bad-ds'))).toBe(false);
    expect(existsSync(join(dir, 'z.png'))).toBe(false);
  });

  it('a re-run of tile resumes without redoing finished slides', async () => {
    const before = await tileTableCsv(join(dir, 'ds'));
    const r = await gradelab('tile', '--manifest', 'm.csv', '--out', 'ds', '--tile-size', '64', '--mpp', '1', '--min-tissue', '0.5');
    expect(r.code).toBe(0);
    expect(await tileTableCsv(join(dir, 'ds'))).toBe(before);
  });
});

describe('gradelab augment', () => {
  it('lists transforms as a table and as JSON', async () => {
    const t = await gradelab('augment', 'list');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/hed-jitter\s+stain\s+sigma=0.05/);
    const j = JSON.parse((await gradelab('augment', 'list', '--json')).stdout);
    expect(j.find((r: { name: string }) => r.name === 'jpeg').severities).toHaveLength(5);
  });

  it('writes a contact sheet and a severity grid', async () => {
    writeFileSync(
      join(dir, 'p.yaml'),
      '- {name: hflip, p: 0.5}\n- {name: hed-jitter, preset: strong}\n- {name: jpeg, severity: 2, p: 0.5}\n',
    );
    const tile = fileURLToPath(new URL('../../experiments/augment/sample-tile.png', import.meta.url));
    const r = await gradelab(
      'augment',
      'preview',
      '--pipeline',
      'p.yaml',
      '--image',
      tile,
      '--out',
      'grid.png',
      '--n',
      '8',
      '--size',
      '64',
    );
    expect(r.code, r.stderr).toBe(0);
    const grid = await sharp(join(dir, 'grid.png')).metadata();
    expect(grid.width).toBeGreaterThan(3 * 64);
    const s = await gradelab(
      'augment',
      'preview',
      '--pipeline',
      'p.yaml',
      '--image',
      tile,
      '--out',
      'sev.png',
      '--severity-grid',
      '--size',
      '64',
    );
    expect(s.code, s.stderr).toBe(0);
    const sev = await sharp(join(dir, 'sev.png')).metadata();
    expect(sev.height).toBeLessThan(2 * (64 + 40));
  });

  it('bad pipelines: one line naming the file and step', async () => {
    writeFileSync(join(dir, 'bad.yaml'), '- {name: hflip}\n- {name: hed-jitter, sigmaa: 0.1}\n');
    const tile = fileURLToPath(new URL('../../experiments/augment/sample-tile.png', import.meta.url));
    const r = await gradelab('augment', 'preview', '--pipeline', 'bad.yaml', '--image', tile, '--out', 'x.png');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml, step 2: hed-jitter: unknown parameter "sigmaa"/);
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
    writeFileSync(join(dir, 'notyaml.yaml'), '- {name: [\n');
    expect((await gradelab('augment', 'preview', '--pipeline', 'notyaml.yaml', '--image', tile, '--out', 'x.png')).stderr).toMatch(
      /notyaml\.yaml: not valid YAML/,
    );
  });
});

describe('gradelab synth', () => {
  it('makes slides, masks and a manifest that tile straight away', async () => {
    const r = await gradelab(
      'synth',
      '--task',
      'breast',
      '--slides',
      '3',
      '--size',
      '512',
      '--out',
      'syn',
      '--anomalies',
      '0.34',
      '--seed',
      '2',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/3 slides \(1 with anomalies\)/);
    const t = await gradelab('tile', '--manifest', 'syn/manifest.csv', '--out', 'syn-ds', '--tile-size', '64', '--mpp', '1');
    expect(t.code, t.stderr).toBe(0);
    const info = JSON.parse((await gradelab('dataset', 'info', 'syn-ds', '--json')).stdout);
    expect(info.slides).toBe(3);
    expect(Object.keys(info.byAnomaly).length).toBe(2);
  });

  it('bad flags are one clear line', async () => {
    const r = await gradelab('synth', '--task', 'prostate', '--slides', '0', '--out', 'x');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--slides must be a positive integer/);
    expect((await gradelab('synth', '--task', 'liver', '--slides', '1', '--out', 'x')).code).toBe(2);
  });
});

describe('gradelab runs', () => {
  it('lists, shows and compares runs of the file store', async () => {
    const { startRun } = await import('../../src/track/index.ts');
    const store = join(dir, 'mlruns');
    const a = await startRun('cli-exp', 'run-a', { trackingDir: store });
    await a.logParams({ lr: 0.01, model: 'resnet' });
    await a.logMetrics({ qwk: 0.81 }, 3);
    await a.end();
    const b = await startRun('cli-exp', 'run-b', { trackingDir: store });
    await b.logParams({ lr: 0.001, model: 'resnet' });
    await b.logMetrics({ qwk: 0.86 }, 3);
    await b.end();
    const list = await gradelab('runs', 'list', '--tracking-dir', store);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/run-b\s+FINISHED/);
    const json = JSON.parse((await gradelab('runs', 'list', '--tracking-dir', store, '--experiment', 'cli-exp', '--json')).stdout);
    expect(json).toHaveLength(2);
    const show = await gradelab('runs', 'show', a.runId.slice(0, 8), '--tracking-dir', store);
    expect(show.stdout).toMatch(/lr\s+0\.01/);
    const cmp = await gradelab('runs', 'compare', 'run-a', 'run-b', '--tracking-dir', store);
    expect(cmp.code, cmp.stderr).toBe(0);
    expect(cmp.stdout).toMatch(/params that differ \(1 of 2\)/);
    expect(cmp.stdout).toMatch(/qwk\s+0\.8100\s+0\.8600/);
    expect((await gradelab('runs', 'show', 'nope', '--tracking-dir', store)).code).toBe(2);
    const sync = await gradelab('runs', 'sync');
    expect(sync.code).toBe(2);
    expect(sync.stderr).toMatch(/nothing to sync/);
  });
});

describe('gradelab metrics', () => {
  it('writes metrics.json, metrics.md and charts from any predictions CSV', async () => {
    const { writePredictions } = await import('../../src/eval/index.ts');
    const { simulatePredictions } = await import('../fixtures/simulatePredictions.ts');
    await writePredictions(join(dir, 'pred.csv'), simulatePredictions(90, 8), 6);
    const r = await gradelab('metrics', '--pred', 'pred.csv', '--out', 'm', '--resamples', '100');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^QWK 0\.\d+ \(0\.\d+-0\.\d+\)/);
    const json = JSON.parse(readFileSync(join(dir, 'm', 'metrics.json'), 'utf8'));
    expect(json.bootstrap.resamples).toBe(100);
    for (const f of ['metrics.md', 'confusion.png', 'roc.svg', 'reliability.png', 'risk-coverage.png', 'per-site.png'])
      expect(existsSync(join(dir, 'm', f)), f).toBe(true);
  });

  it('bad predictions: one line, exit 2, no output folder', async () => {
    writeFileSync(join(dir, 'badpred.csv'), 'slide_id,patient_id,site,scanner,label,pred,prob_0,prob_1\ns,p,A,x,0,0,0.7,0.7\n');
    const r = await gradelab('metrics', '--pred', 'badpred.csv', '--out', 'm2');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/badpred\.csv, row 2: probabilities sum to 1\.4000, not 1/);
    expect(existsSync(join(dir, 'm2'))).toBe(false);
  });
});

describe('Ctrl-C', () => {
  it('stops tiling with exit 130, says how to resume, leaves no temp file, and the rerun equals an uninterrupted run', async () => {
    const slides = join(dir, 'many');
    mkdirSync(slides, { recursive: true });
    for (let i = 0; i < 30; i++)
      await writeSharpPyramid(join(slides, `s${i}.tiff`), discImage(640, 480, [{ cx: 320, cy: 240, r: 200 - i }]), { mpp: 0.5 });
    writeFileSync(
      join(slides, 'm.csv'),
      `path,patient_id,isup_grade\n${Array.from({ length: 30 }, (_, i) => `s${i}.tiff,p${i},${i % 6}`).join('\n')}\n`,
    );
    const args = ['--manifest', join(slides, 'm.csv'), '--tile-size', '64', '--mpp', '1'];
    const out = join(dir, 'interrupted');
    const child = spawn(process.execPath, [bin, 'tile', ...args, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once the first slide is committed: its rows exist, the rest are to do.
    while (!(existsSync(join(out, 'rows')) && readdirSync(join(out, 'rows')).length)) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/gradelab: interrupted; temporary files removed; to resume, run the same gradelab tile command again/);
    const leftovers = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? leftovers(join(d, e.name)) : e.name.endsWith('.tmp') ? [e.name] : [],
      );
    expect(leftovers(out)).toEqual([]);
    expect(existsSync(join(out, 'tiles.parquet'))).toBe(false);
    expect((await gradelab('tile', ...args, '--out', out)).code).toBe(0);
    expect((await gradelab('tile', ...args, '--out', join(dir, 'uninterrupted'))).code).toBe(0);
    expect(await tileTableCsv(out)).toBe(await tileTableCsv(join(dir, 'uninterrupted')));
  });
});

describe('gradelab train, predict, eval', () => {
  it('trains from an experiment file, then predicts and evaluates a partition', async () => {
    const ds = join(dir, 'train-ds');
    writeFileSync(
      join(dir, 'exp.yaml'),
      [
        'name: cli-tiny',
        'task: prostate',
        'data:',
        `  dataset: ${ds}`,
        '  folds: 3',
        '  synth: {slides: 12, size: 768, sites: 2, anomalies: 0.25, seed: 4}',
        '  tiling: {tileSize: 64, mpp: 1.0, stride: 32, minTissue: 0.5}',
        // The Gleason pattern head, learning from the synthetic slides' masks: every command below runs
        // it (the quick demo runs the slide-label head through the same commands).
        'model: {backbone: resnet, width: 0.25, inputSize: 32, head: patterns}',
        'augment: [{name: hflip, p: 0.5}]',
        'train: {epochs: 1, batchSize: 16, tilesPerEpoch: 64, valTilesPerSlide: 4, workers: 0}',
        'backend: wasm',
      ].join('\n'),
    );
    const t = await gradelab('train', '--config', 'exp.yaml', '--out', 'm-tiny', '--tracking-dir', 'mlruns-train');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/best validation QWK -?\d\.\d{3} at epoch 1 \(wasm, (one thread|\d replicas)\)/);
    for (const f of ['model.json', 'weights.bin', 'gradelab.json', 'training-curves.png'])
      expect(existsSync(join(dir, 'm-tiny', f)), f).toBe(true);
    expect(t.stdout + t.stderr).toMatch(/pattern rule chosen on \d+ validation slides: cancer from /);
    const meta = JSON.parse(readFileSync(join(dir, 'm-tiny', 'gradelab.json'), 'utf8'));
    expect(meta.head).toBe('patterns');
    expect(meta.patternGrading.chosenOn).toMatchObject({ split: 'val', fold: 0 });
    const p = await gradelab('predict', '--model', 'm-tiny', '--data', ds, '--split', 'test', '--out', 'tiny-pred.csv');
    expect(p.code, p.stderr).toBe(0);
    const predHeader = readFileSync(join(dir, 'tiny-pred.csv'), 'utf8').split('\n')[0];
    expect(predHeader).toMatch(/^slide_id,patient_id,site,scanner,label,pred,prob_0,/);
    expect(predHeader).toMatch(/gleason,.*pattern_benign,pattern_g3,pattern_g4,pattern_g5/);
    const e = await gradelab('eval', '--model', 'm-tiny', '--data', ds, '--split', 'all', '--out', 'tiny-eval', '--resamples', '50');
    expect(e.code, e.stderr).toBe(0);
    expect(existsSync(join(dir, 'tiny-eval', 'metrics.json'))).toBe(true);
    // The pattern model's tiles against the masks: every masked tile of the evaluation set's slides.
    const evalSet = new Set(JSON.parse(readFileSync(join(dir, 'tiny-eval', 'metrics.json'), 'utf8')).evaluation_set.slides);
    const masked = readdirSync(join(ds, 'rows'))
      .flatMap((f) => parse(readFileSync(join(ds, 'rows', f), 'utf8'), { columns: true }) as Record<string, string>[])
      .filter((r) => evalSet.has(r.slide_id) && r.mask_g3 !== '' && Number(r.mask_benign) + Number(r.mask_cancer) > 0);
    const agreement = JSON.parse(readFileSync(join(dir, 'tiny-eval', 'patterns.json'), 'utf8'));
    expect(agreement.tiles).toBe(masked.length);
    expect(agreement.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(masked.length);
    const rep = await gradelab('report', '--run', 'm-tiny', '--eval', 'tiny-eval', '--out', 'tiny-report', '--no-track');
    expect(rep.code, rep.stderr).toBe(0);
    const patternsSection = JSON.parse(readFileSync(join(dir, 'tiny-report', 'report.json'), 'utf8')).sections.find(
      (x: { id: string }) => x.id === 'patterns',
    );
    expect(patternsSection.tables.map((x: { caption: string }) => x.caption)).toEqual([
      'Tiles against the masks',
      'By pattern',
      'Tiles by mask pattern (rows) and model pattern (columns)',
    ]);
    // A handful of validation slides cannot carry a temperature: refused in one line, the model untouched.
    const before = readFileSync(join(dir, 'm-tiny', 'gradelab.json'), 'utf8');
    const cal = await gradelab('calibrate', '--model', 'm-tiny', '--data', ds);
    expect([cal.code, cal.stderr.trim().split('\n').pop()]).toEqual([
      2,
      expect.stringMatching(
        /labelled slides of \d+ patients in the val partition; temperature scaling needs at least 10 slides of 5 patients$/,
      ),
    ]);
    expect(readFileSync(join(dir, 'm-tiny', 'gradelab.json'), 'utf8')).toBe(before);
    expect((await gradelab('models', 'list')).stdout).toMatch(/resnet\s+compact ResNet/);
    // OOD: fit on the model's features, evaluate against the anomalous slides, then predict with flags.
    const of = await gradelab('ood', 'fit', '--model', 'm-tiny', '--data', ds, '--method', 'energy', 'knn', 'mahalanobis');
    expect(of.code, of.stderr).toBe(0);
    const oe = await gradelab('ood', 'eval', '--model', 'm-tiny', '--id', ds, '--ood', ds, '--out', 'tiny-ood', '--resamples', '50');
    expect(oe.code, oe.stderr).toBe(0);
    const ood = JSON.parse(readFileSync(join(dir, 'tiny-ood', 'ood.json'), 'utf8'));
    expect(Object.keys(ood.detectors)).toEqual(['energy', 'knn', 'mahalanobis']);
    expect(ood.detectors.energy.all.slide.auroc.ci95).toHaveLength(2);
    expect(existsSync(join(dir, 'tiny-ood', 'ood-roc.png'))).toBe(true);
    const pf = await gradelab('predict', '--model', 'm-tiny', '--data', ds, '--split', 'all', '--out', 'tiny-pred-ood.csv');
    expect(pf.code, pf.stderr).toBe(0);
    expect(readFileSync(join(dir, 'tiny-pred-ood.csv'), 'utf8').split('\n')[0]).toMatch(/ood_score,ood_flag/);
    expect((await gradelab('ood', 'fit', '--model', 'm-tiny', '--data', ds, '--method', 'magic')).stderr).toMatch(
      /unknown OOD method "magic"/,
    );
    // Heatmaps of the dataset's slides (OOD scores from the detectors just fitted), QuPath annotations
    // and the static viewer; a heatmap folder for other slides is refused.
    const slides = join(`${ds}-slides`, 'manifest.csv');
    const hm = await gradelab('heatmap', '--model', 'm-tiny', '--manifest', slides, '--out', 'hm');
    expect(hm.code, hm.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(dir, 'hm', 'index.json'), 'utf8'));
    expect(index).toHaveLength(12);
    const first = JSON.parse(readFileSync(join(dir, 'hm', index[0].id, 'heatmap.json'), 'utf8'));
    expect(first.tiles.length).toBeGreaterThan(0);
    expect(first.tiles[0].ood).not.toBeNull();
    expect(Object.keys(first.overlays).sort()).toEqual(['grade', 'ood', 'tissue', 'truth']);
    // Intended use: the model records its training slides' scanners and native mpp; a slide scanned at
    // half that mpp (40x against 20x), from a scanner no manifest names, is mapped and marked outside.
    const tiny = JSON.parse(readFileSync(join(dir, 'm-tiny', 'gradelab.json'), 'utf8'));
    const trainedMpp = (parse(readFileSync(join(ds, 'slides.csv'), 'utf8'), { columns: true }) as { slide_mpp: string }[]).map((r) =>
      Number(r.slide_mpp),
    );
    expect(tiny.scope.slideMpp).toEqual([Math.min(...trainedMpp), Math.max(...trainedMpp)]);
    expect(first.scope.reasons.filter((r: string) => !r.startsWith('flagged'))).toEqual([]);
    const fineMpp = tiny.scope.slideMpp[0] / 2;
    await writeSharpPyramid(join(dir, 'fine.tiff'), discImage(1600, 1200, [{ cx: 800, cy: 600, r: 520 }]), { mpp: fineMpp });
    const fine = await gradelab('heatmap', '--model', 'm-tiny', '--slide', 'fine.tiff', '--out', 'hm-fine');
    expect(fine.code, fine.stderr).toBe(0);
    const fineMap = JSON.parse(readFileSync(join(dir, 'hm-fine', 'fine', 'heatmap.json'), 'utf8'));
    expect(fineMap.scope.inScope).toBe(false);
    expect(fineMap.scope.reasons).toContain(
      `scanned at ${fineMpp} um/px; the model's training slides were at ${tiny.scope.slideMpp[0]} um/px`,
    );
    const ann = await gradelab('export-annotations', '--pred', 'hm', '--format', 'qupath', '--out', 'ann');
    expect(ann.code, ann.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'ann', `${index[0].id}.geojson`), 'utf8')).type).toBe('FeatureCollection');
    const vx = await gradelab('view', '--pred', 'hm', '--export', 'vx');
    expect(vx.code, vx.stderr).toBe(0);
    expect(existsSync(join(dir, 'vx', 'index.html'))).toBe(true);
    const other = await gradelab('view', 'a.svs', '--pred', 'hm', '--export', 'vx2');
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/hm: has no heatmap for a \(it holds /);
    expect(existsSync(join(dir, 'vx2'))).toBe(false);
    // One partition of the dataset: exactly the slides predict scored on the test partition.
    const hp = await gradelab('heatmap', '--model', 'm-tiny', '--data', ds, '--split', 'test', '--out', 'hm-test');
    expect(hp.code, hp.stderr).toBe(0);
    const testIds = readFileSync(join(dir, 'tiny-pred.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[0]);
    const mapped = JSON.parse(readFileSync(join(dir, 'hm-test', 'index.json'), 'utf8')).map((h: { id: string }) => h.id);
    expect(mapped.sort()).toEqual(testIds.sort());
    // One slide, one grade for a pattern model too: the heatmap's slide grade and areas are predict's.
    const predRows = readFileSync(join(dir, 'tiny-pred.csv'), 'utf8').trim().split('\n');
    const predCols = predRows[0].split(',');
    for (const line of predRows.slice(1)) {
      const row = Object.fromEntries(line.split(',').map((v, i) => [predCols[i], v]));
      const map = JSON.parse(readFileSync(join(dir, 'hm-test', row.slide_id, 'heatmap.json'), 'utf8'));
      expect(map.slidePrediction.pred, row.slide_id).toBe(Number(row.pred));
      expect(map.slidePrediction.gleason, row.slide_id).toBe(row.gleason);
      expect(map.slidePrediction.patterns.g4, row.slide_id).toBeCloseTo(Number(row.pattern_g4), 4);
    }
    const both = await gradelab('heatmap', '--model', 'm-tiny', '--data', ds, '--manifest', slides, '--out', 'hm-x');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give one of --slide, --manifest or --data, not --manifest and --data/);
    // Robustness: a failing criterion exits 3; two shards merge to the unsharded result.
    writeFileSync(
      join(dir, 'suite.yaml'),
      'name: tiny\ntilesPerSlide: 2\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [1, 3]}\n  - {name: warm, transform: {name: scanner, profile: warm-bright, mpp: 1.0}}\ncriteria:\n  - qwk >= 0.999\n  - ood_flag_rate <= 1 at severity <= 3\n',
    );
    const r = await gradelab(
      'robustness',
      '--model',
      'm-tiny',
      '--data',
      ds,
      '--suite',
      'suite.yaml',
      '--out',
      'rob',
      '--resamples',
      '20',
      '--tracking-dir',
      'mlruns-rob',
    );
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/FAIL  qwk >= 0\.999/);
    for (const f of ['results.json', 'results.csv', 'summary.md', 'qwk-vs-severity.png', 'qwk-drop-heatmap.png'])
      expect(existsSync(join(dir, 'rob', f)), f).toBe(true);
    // Calibration under shift: each condition's ECE beside its change from the clean ECE.
    const results = JSON.parse(readFileSync(join(dir, 'rob', 'results.json'), 'utf8'));
    const summaryMd = readFileSync(join(dir, 'rob', 'summary.md'), 'utf8');
    expect(summaryMd).toContain(`ECE (change from clean ${results.clean.ece.toFixed(3)})`);
    for (const u of results.units) {
      const change = u.ece - results.clean.ece;
      expect(summaryMd).toContain(`| ${u.ece.toFixed(3)} (${change >= 0 ? '+' : ''}${change.toFixed(3)}) |`);
    }
    for (const i of [1, 2]) {
      const sh = await gradelab(
        'robustness',
        '--model',
        'm-tiny',
        '--data',
        ds,
        '--suite',
        'suite.yaml',
        '--out',
        `rob-s${i}`,
        '--resamples',
        '20',
        '--shard',
        `${i}/2`,
        '--tracking-dir',
        'mlruns-rob',
      );
      expect(sh.code, sh.stderr).toBe(0);
    }
    const m = await gradelab('robustness', 'merge', 'rob-s1', 'rob-s2', '--out', 'rob-merged');
    expect(m.code).toBe(3);
    const strip = (p: string) => JSON.parse(readFileSync(join(dir, p, 'results.json'), 'utf8'), (k, v) => (/seconds$/i.test(k) ? 0 : v));
    expect(strip('rob-merged')).toEqual(strip('rob'));
    const runs = JSON.parse((await gradelab('runs', 'list', '--tracking-dir', 'mlruns-rob', '--children', '--json')).stdout);
    expect(runs.filter((x: any) => x.tags['mlflow.parentRunId']).length).toBeGreaterThanOrEqual(4);
    // A site audit of the dataset against itself.
    const a = await gradelab('audit', '--model', 'm-tiny', '--site-data', ds, '--train-data', ds, '--out', 'audit', '--resamples', '20');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/representation shift/);
    const audit = JSON.parse(readFileSync(join(dir, 'audit', 'audit.json'), 'utf8'));
    // Against itself the site is the training data: stain vectors the same, the representation shift of
    // the order of the within-training one, and every slide graded as predict grades it.
    expect(audit.colour.angleDegrees.h.value).toBeLessThan(2);
    expect(audit.colour.angleDegrees.e.value).toBeLessThan(2);
    expect(audit.representationShift.ratio).toBeLessThan(2.5);
    expect(audit.findings[0]).toMatch(/^(The new site looks like the training data|Inconclusive)/);
    // Precision (rescans on a simulated scanner): a pattern model's slides graded by its rule on every rescan.
    const prec = await gradelab(
      ...['precision', '--model', 'm-tiny', '--data', ds, '--split', 'all', '--rescans', '2', '--scanner', 'noisy-dim'],
      ...['--out', 'prec', '--resamples', '100'],
    );
    expect(prec.code, prec.stderr).toBe(0);
    expect(existsSync(join(dir, 'prec', 'precision.json'))).toBe(true);
    const sitePred = await gradelab('predict', '--model', 'm-tiny', '--data', ds, '--split', 'all', '--out', 'all.csv');
    expect(sitePred.code, sitePred.stderr).toBe(0);
    const lines = readFileSync(join(dir, 'all.csv'), 'utf8').trim().split('\n');
    const col = lines[0].split(',');
    const predOf = new Map(lines.slice(1).map((l) => [l.split(',')[col.indexOf('slide_id')], Number(l.split(',')[col.indexOf('pred')])]));
    for (const slide of audit.slides) expect(slide.pred, slide.slideId).toBe(predOf.get(slide.slideId));
    // Its grade distributions, recounted from predict's rows: the site's predicted grades (every
    // non-anomalous slide) and the labels of the training partition's slides; total variation by hand.
    const rowsOf = (file: string) => {
      const [head, ...body] = readFileSync(join(dir, file), 'utf8').trim().split('\n');
      const h = head.split(',');
      return body.map((l) => Object.fromEntries(l.split(',').map((v, i) => [h[i], v])));
    };
    const trainPred = await gradelab('predict', '--model', 'm-tiny', '--data', ds, '--split', 'train', '--out', 'train.csv');
    expect(trainPred.code, trainPred.stderr).toBe(0);
    const share = (values: number[]) => [0, 1, 2, 3, 4, 5].map((g) => values.filter((v) => v === g).length / values.length);
    const sitePredicted = share(
      rowsOf('all.csv')
        .filter((r) => !r.anomaly)
        .map((r) => Number(r.pred)),
    );
    const trainingLabels = share(
      rowsOf('train.csv')
        .filter((r) => !r.anomaly)
        .map((r) => Number(r.label)),
    );
    expect(audit.gradeDistribution.predicted).toEqual(sitePredicted);
    expect(audit.gradeDistribution.training).toEqual(trainingLabels);
    const tv = 0.5 * sitePredicted.reduce((sum, p, g) => sum + Math.abs(p - trainingLabels[g]), 0);
    expect(audit.gradeDistribution.totalVariation.value).toBeCloseTo(tv, 12);
    const bad = await gradelab('train', '--config', 'missing.yaml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/missing\.yaml: experiment file not found/);
  });

  it('reads every file it wrote back through its contract: a corrupted one is one line naming the file, exit 2', async () => {
    const ds = join(dir, 'train-ds');
    const heatmap = readdirSync(join(dir, 'hm'), { withFileTypes: true }).find((d) => d.isDirectory())!.name;
    const edit = (path: string, f: (o: any) => void) => {
      const o = JSON.parse(readFileSync(path, 'utf8'));
      f(o);
      writeFileSync(path, JSON.stringify(o));
    };
    const cases: [string, string, (copy: string) => void, (copy: string) => string[], RegExp][] = [
      [
        'm-tiny',
        'gradelab.json',
        (c) => edit(join(c, 'gradelab.json'), (o) => (o.tileSize = 'big')),
        (c) => ['predict', '--model', c, '--data', ds, '--out', 'x.csv'],
        /gradelab\.json: not a valid model description.*: tileSize/,
      ],
      [
        'train-ds',
        'dataset.json',
        (c) => edit(join(c, 'dataset.json'), (o) => (o.mpp = -1)),
        (c) => ['dataset', 'info', c],
        /dataset\.json: not a valid dataset description: mpp/,
      ],
      [
        'train-ds',
        'dataset.json',
        (c) => edit(join(c, 'dataset.json'), (o) => (o.version = 99)),
        (c) => ['dataset', 'info', c],
        /dataset\.json: dataset version 99 is not supported/,
      ],
      [
        'train-ds',
        'splits.json',
        (c) => writeFileSync(join(c, 'splits.json'), '{"folds": 3, "patientF'),
        (c) => ['predict', '--model', 'm-tiny', '--data', c, '--out', 'x.csv'],
        /splits\.json: patient split is not valid JSON/,
      ],
      [
        'm-tiny',
        'checkpoint/state.json',
        (c) => edit(join(c, 'checkpoint', 'state.json'), (o) => (o.history = 'none')),
        (c) => ['train', '--resume', c],
        /state\.json: not a valid training checkpoint: history/,
      ],
      [
        'm-tiny',
        'ood/detectors.json',
        (c) => writeFileSync(join(c, 'ood', 'detectors.json'), '[]'),
        (c) => ['predict', '--model', c, '--data', ds, '--out', 'x.csv'],
        /detectors\.json/,
      ],
      [
        'm-tiny',
        'history.json',
        (c) => writeFileSync(join(c, 'history.json'), '[{"epoch": 1, "trainLoss": '),
        (c) => ['eval', '--model', c, '--data', ds, '--out', 'eval-bad', '--no-track'],
        /history\.json: training history is not valid JSON/,
      ],
      [
        'm-tiny',
        'config.yaml',
        (c) => writeFileSync(join(c, 'config.yaml'), 'name: [unclosed'),
        (c) => ['report', '--run', c, '--out', 'rep-bad', '--no-track'],
        /config\.yaml/,
      ],
      [
        'hm',
        'heatmap.json',
        (c) => edit(join(c, heatmap, 'heatmap.json'), (o) => delete o.tiles),
        (c) => ['view', '--pred', c, '--export', 'vx-bad'],
        /heatmap\.json: not a valid gradelab heatmap: tiles/,
      ],
      [
        'tiny-eval',
        'metrics.json',
        (c) => edit(join(c, 'metrics.json'), (o) => (o.qwk = 'high')),
        (c) => ['report', '--run', 'm-tiny', '--out', 'rep-bad', '--eval', c, '--no-track'],
        /metrics\.json: not a valid metrics file \(gradelab eval\): qwk/,
      ],
      [
        'tiny-ood',
        'ood.json',
        (c) => edit(join(c, 'ood.json'), (o) => delete o.detectors),
        (c) => ['report', '--run', 'm-tiny', '--out', 'rep-bad', '--ood', c, '--no-track'],
        /ood\.json: not a valid OOD evaluation .*: detectors/,
      ],
      [
        'rob',
        'results.json',
        (c) => edit(join(c, 'results.json'), (o) => (o.units = {})),
        (c) => ['report', '--run', 'm-tiny', '--out', 'rep-bad', '--robustness', c, '--no-track'],
        /results\.json: not a valid robustness results .*: units/,
      ],
      [
        'audit',
        'audit.json',
        (c) => edit(join(c, 'audit.json'), (o) => (o.findings = 3)),
        (c) => ['report', '--run', 'm-tiny', '--out', 'rep-bad', '--audit', c, '--no-track'],
        /audit\.json: not a valid site audit .*: findings/,
      ],
      [
        'cmp',
        'compare.json',
        (c) => writeFileSync(join(c, 'compare.json'), ''),
        (c) => ['report', '--run', 'm-tiny', '--out', 'rep-bad', '--compare', c, '--no-track'],
        /compare\.json: comparison \(gradelab compare\) is not valid JSON/,
      ],
    ];
    for (const [i, [from, file, corrupt, command, message]] of cases.entries()) {
      const copy = join(dir, `corrupt-${i}`);
      cpSync(join(dir, from), copy, { recursive: true });
      corrupt(copy);
      const r = await gradelab(...command(copy));
      expect(r.code, `${file}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), file).toHaveLength(1);
      expect(r.stderr, file).toMatch(message);
    }
    expect(existsSync(join(dir, 'rep-bad'))).toBe(false);
    expect(existsSync(join(dir, 'eval-bad'))).toBe(false);
  });

  it('every command that takes --data runs on a coordinates-only dataset, and predicts what the raw store predicts', async () => {
    const tiling = ['--manifest', join(dir, 'train-ds-slides', 'manifest.csv'), '--tile-size', '64', '--mpp', '1', '--stride', '32'];
    for (const store of ['coords', 'raw']) {
      const t = await gradelab('tile', ...tiling, '--store', store, '--out', `ds-${store}`);
      expect(t.code, t.stderr).toBe(0);
      cpSync(join(dir, 'train-ds', 'splits.json'), join(dir, `ds-${store}`, 'splits.json'));
    }
    expect(existsSync(join(dir, 'ds-coords', 'shards'))).toBe(false);
    cpSync(join(dir, 'm-tiny'), join(dir, 'm-coords'), { recursive: true });
    // Detectors fitted on the other tiling would judge these tiles (and could flag every slide): refitted below.
    rmSync(join(dir, 'm-coords', 'ood'), { recursive: true });
    const run = async (...args: string[]) => {
      const r = await gradelab(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r;
    };
    for (const store of ['coords', 'raw'])
      await run('predict', '--model', 'm-coords', '--data', `ds-${store}`, '--split', 'all', '--out', `p-${store}.csv`);
    expect(readFileSync(join(dir, 'p-coords.csv'), 'utf8')).toBe(readFileSync(join(dir, 'p-raw.csv'), 'utf8'));
    await run('eval', '--model', 'm-coords', '--data', 'ds-coords', '--out', 'ev-coords', '--resamples', '20', '--no-track');
    // Features of a frozen encoder: the same vectors from slides read at use as from raw shards.
    const encoder = fileURLToPath(new URL('../fixtures/onnx/cnn-encoder.onnx', import.meta.url));
    for (const store of ['coords', 'raw']) await run('features', '--backbone', encoder, '--input-size', '64', '--data', `ds-${store}`);
    const cacheOf = (store: string) => {
      const root = join(dir, `ds-${store}`, 'embeddings');
      const key = readdirSync(root)[0];
      return readdirSync(join(root, key))
        .filter((f) => f.endsWith('.f32'))
        .sort()
        .map((f) => readFileSync(join(root, key, f)));
    };
    const [fromCoords, fromRaw] = [cacheOf('coords'), cacheOf('raw')];
    expect(fromCoords.length).toBe(12);
    expect(fromCoords).toEqual(fromRaw);
    await run('ood', 'fit', '--model', 'm-coords', '--data', 'ds-coords');
    await run('heatmap', '--model', 'm-coords', '--data', 'ds-coords', '--split', 'all', '--out', 'hm-coords');
    await run(
      'audit',
      '--model',
      'm-coords',
      '--site-data',
      'ds-coords',
      '--train-data',
      'ds-coords',
      '--out',
      'au-coords',
      '--resamples',
      '20',
      '--no-track',
    );
    const rob = await gradelab(
      'robustness',
      '--model',
      'm-coords',
      '--data',
      'ds-coords',
      '--suite',
      'suite.yaml',
      '--out',
      'rob-coords',
      '--resamples',
      '20',
    );
    expect([0, 3], rob.stderr).toContain(rob.code);
    expect(existsSync(join(dir, 'rob-coords', 'results.json'))).toBe(true);
    // A slide moved away is one line naming it, before any work.
    const moved = join(
      dir,
      'train-ds-slides',
      'slides',
      readdirSync(join(dir, 'train-ds-slides', 'slides')).find((f) => f.endsWith('.tiff'))!,
    );
    renameSync(moved, `${moved}.away`);
    try {
      const r = await gradelab('predict', '--model', 'm-coords', '--data', 'ds-coords', '--out', 'p-gone.csv');
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/tiles\.parquet: names the slide .*\.tiff, which is not there/);
    } finally {
      renameSync(`${moved}.away`, moved);
    }
  });

  it('refuses a bad experiment, an overwrite and data of another resolution before any work', async () => {
    const base = readFileSync(join(dir, 'exp.yaml'), 'utf8').replace(/\n {2}synth: .*\n/, '\n');
    const variants: [string, RegExp][] = [
      [base.replace('backbone: resnet', 'backbone: resnett'), /exp-bad-0\.yaml: model\.backbone: unknown model "resnett"; known: .*resnet/],
      [
        base.replace('augment: [{name: hflip, p: 0.5}]', 'augment: [{name: hed-jiter}]'),
        /exp-bad-1\.yaml: augment.*unknown transform "hed-jiter"/,
      ],
      [
        base.replace('augment: [{name: hflip, p: 0.5}]', 'augment: [{name: hed-jitter, preset: medium}]'),
        /exp-bad-2\.yaml: augment.*preset/,
      ],
      [base.replace(/dataset: .*/, 'dataset: no-such-dataset'), /data\.dataset no-such-dataset is not a tile dataset/],
      [
        base.replace('train: {', 'train: {seeds: 3, '),
        /exp-bad-4\.yaml: train\.seeds repeats heads on cached embeddings .* a resnet trained end to end takes a run per seed/,
      ],
    ];
    for (const [i, [text, message]] of variants.entries()) {
      writeFileSync(join(dir, `exp-bad-${i}.yaml`), text);
      const r = await gradelab('train', '--config', `exp-bad-${i}.yaml`, '--out', `m-bad-${i}`, '--tracking-dir', 'mlruns-bad');
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      // Nothing started: no model folder, no tracked run.
      expect(existsSync(join(dir, `m-bad-${i}`))).toBe(false);
      expect(existsSync(join(dir, 'mlruns-bad'))).toBe(false);
    }
    const again = await gradelab('train', '--config', 'exp.yaml', '--out', 'm-tiny', '--tracking-dir', 'mlruns-bad');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/m-tiny: holds a trained model; --force replaces it/);
    const resumed = await gradelab('train', '--resume', 'm-tiny', '--epochs', '3');
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toMatch(/--resume continues a run as it was started/);
    const underFile = await gradelab('predict', '--model', 'm-tiny', '--data', join(dir, 'train-ds'), '--out', 'tiny-pred.csv/x.csv');
    expect(underFile.code).toBe(2);
    expect(underFile.stderr).toMatch(/cannot write --out tiny-pred\.csv\/x\.csv: .*tiny-pred\.csv is a file, not a folder/);
    // Tiles of another size and resolution: refused; the same field of view in another size: refused unless --resample.
    const manifest = join(dir, 'train-ds-slides', 'manifest.csv');
    for (const [out, size, mpp] of [
      ['ds-32', '32', '0.5'],
      ['ds-128', '128', '0.5'],
    ])
      expect((await gradelab('tile', '--manifest', manifest, '--out', out, '--tile-size', size, '--mpp', mpp)).code).toBe(0);
    const other = await gradelab('predict', '--model', 'm-tiny', '--data', 'ds-32', '--split', 'all', '--out', 'p32.csv');
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/ds-32: tiles of 32 px at 0\.5 um\/px, but the model m-tiny takes 64 px at 1 um\/px; retile the slides/);
    expect(existsSync(join(dir, 'p32.csv'))).toBe(false);
    const sameView = await gradelab('eval', '--model', 'm-tiny', '--data', 'ds-128', '--split', 'all', '--out', 'e128', '--no-track');
    expect(sameView.code).toBe(2);
    expect(sameView.stderr).toMatch(/they cover the same field of view: pass --resample/);
    const resampled = await gradelab(
      'predict',
      '--model',
      'm-tiny',
      '--data',
      'ds-128',
      '--split',
      'all',
      '--out',
      'p128.csv',
      '--resample',
    );
    expect(resampled.code, resampled.stderr).toBe(0);
  });
});
