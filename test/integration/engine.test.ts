import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { gleasonFromAreas, readModelMeta, sha256File } from '../../src/core/index.ts';
import { buildTileDataset, EmbeddingCache, makeSplit, openTileDataset, readManifest, saveSplit, patientsOf } from '../../src/data/index.ts';
import { generateSynthetic } from '../../src/synth/index.ts';
import { readContract } from '../../src/onnx/index.ts';
import { runCli, tempDir } from '../helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin', 'gradelab.mjs');
const vit = join(root, 'experiments/encoders/vit-tiny.onnx');
const dir = tempDir();
const ds = join(dir, 'tiles');

/** The CLI in this process (its own process start is checked in test/cli). */
function gradelab(...args: string[]) {
  return runCli(args, { cwd: root, env: { GRADELAB_LOG: 'info' } });
}

/** The shipped foundation experiment on this file's dataset, with overrides. */
const trainFoundation = (out: string, ...flags: string[]) =>
  gradelab(
    'train',
    '--config',
    'experiments/prostate-foundation.yaml',
    '--data',
    ds,
    ...flags,
    '--out',
    out,
    '--tracking-dir',
    join(dir, 'mlruns'),
  );

const rows = (path: string) => parse(readFileSync(path, 'utf8'), { columns: true }) as Record<string, string>[];
const probs = (r: Record<string, string>) =>
  Object.keys(r)
    .filter((c) => c.startsWith('prob_'))
    .map((c) => Number(r[c]));

beforeAll(async () => {
  const { manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 14,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0.2,
    seed: 21,
  });
  // With the synthetic masks' patterns: the pattern head below learns from them.
  await buildTileDataset(readManifest(manifest), { out: ds, tileSize: 64, mpp: 1.0, stride: 32, minTissue: 0.5, maskScheme: 'gradelab' });
  await saveSplit(ds, makeSplit(patientsOf((await openTileDataset(ds)).tiles), { folds: 3, seed: 1 }));
}, 600_000);

describe('ONNX engine from the command line', () => {
  it('train writes model.onnx; ONNX Runtime and TensorFlow.js predict the same; a stale export is refused', async () => {
    writeFileSync(
      join(dir, 'exp.yaml'),
      `name: e\ntask: prostate\ndata: {dataset: ${ds}}\nmodel: {backbone: mobilenetv2, width: 0.35, inputSize: 32, head: ordinal}\naugment: []\ntrain: {epochs: 1, batchSize: 16, tilesPerEpoch: 64, valTilesPerSlide: 4, workers: 0}\nbackend: wasm\n`,
    );
    const t = await gradelab('train', '--config', join(dir, 'exp.yaml'), '--out', join(dir, 'm'), '--tracking-dir', join(dir, 'mlruns'));
    expect(t.code, t.stderr).toBe(0);
    const meta = readModelMeta(join(dir, 'm'));
    expect(readContract(join(dir, 'm', 'model.onnx'))).toMatchObject({ head: 'ordinal', inputSize: 32, weightsSha256: meta.weightsSha256 });
    const onnx = await gradelab(
      'predict',
      '--model',
      join(dir, 'm'),
      '--data',
      ds,
      '--split',
      'all',
      '--level',
      'tile',
      '--out',
      join(dir, 'onnx.csv'),
      '--threads',
      '1',
    );
    expect(onnx.code, onnx.stderr).toBe(0);
    expect(onnx.stderr).toMatch(/engine: onnx \(cpu, 1 thread\)/);
    const tfjs = await gradelab(
      'predict',
      '--model',
      join(dir, 'm'),
      '--data',
      ds,
      '--split',
      'all',
      '--level',
      'tile',
      '--out',
      join(dir, 'tfjs.csv'),
      '--engine',
      'tfjs',
      '--backend',
      'wasm',
    );
    expect(tfjs.code, tfjs.stderr).toBe(0);
    expect(tfjs.stderr).toMatch(/engine: tfjs \(wasm/);
    const a = rows(join(dir, 'onnx.csv'));
    const b = rows(join(dir, 'tfjs.csv'));
    expect(a.length).toBeGreaterThan(100);
    let worst = 0;
    a.forEach((r, i) => probs(r).forEach((p, c) => (worst = Math.max(worst, Math.abs(p - probs(b[i])[c])))));
    expect(worst).toBeLessThan(1e-4);
    // A model.onnx from other weights is never scored.
    writeFileSync(join(dir, 'm', 'gradelab.json'), JSON.stringify({ ...meta, weightsSha256: 'f'.repeat(64) }));
    const stale = await gradelab('predict', '--model', join(dir, 'm'), '--data', ds, '--out', join(dir, 'x.csv'));
    expect(stale.code).toBe(2);
    expect(stale.stderr.trim().split('\n').pop()).toMatch(/model\.onnx was exported from other weights .*re-export with `gradelab export/);
    const ex = await gradelab('export', '--model', join(dir, 'm'), '--out', join(dir, 'm13.onnx'), '--opset', '13');
    expect(ex.code, ex.stderr).toBe(0);
    expect((await gradelab('export', '--model', join(dir, 'm'), '--opset', '5')).stderr).toMatch(
      /--opset must be an integer from 11 to 21/,
    );
    writeFileSync(join(dir, 'm', 'gradelab.json'), JSON.stringify(meta));
  }, 300_000);

  it('predict --shard I/N covers every slide once, and predict merge joins the shards', async () => {
    const all = await gradelab('predict', '--model', join(dir, 'm'), '--data', ds, '--split', 'all', '--out', join(dir, 'all.csv'));
    expect(all.code, all.stderr).toBe(0);
    for (const i of [1, 2, 3])
      expect(
        (
          await gradelab(
            'predict',
            '--model',
            join(dir, 'm'),
            '--data',
            ds,
            '--split',
            'all',
            '--shard',
            `${i}/3`,
            '--out',
            join(dir, `s${i}.csv`),
          )
        ).code,
      ).toBe(0);
    const m = await gradelab(
      'predict',
      'merge',
      join(dir, 's1.csv'),
      join(dir, 's2.csv'),
      join(dir, 's3.csv'),
      '--out',
      join(dir, 'merged.csv'),
    );
    expect(m.code, m.stderr).toBe(0);
    // The slides are listed sorted (synth names them so): the merge is the single run, byte for byte.
    expect(readFileSync(join(dir, 'merged.csv'), 'utf8')).toBe(readFileSync(join(dir, 'all.csv'), 'utf8'));
    expect((await gradelab('predict', 'merge', join(dir, 's1.csv'), join(dir, 's1.csv'), '--out', join(dir, 'bad.csv'))).stderr).toMatch(
      /shards must not overlap/,
    );
    expect(
      (await gradelab('predict', '--model', join(dir, 'm'), '--data', ds, '--shard', '4/3', '--out', join(dir, 'bad.csv'))).stderr,
    ).toMatch(/--shard must be I\/N/);
  }, 300_000);

  it('an ONNX file that is not the registry encoder it claims to be is refused before any tile is embedded', async () => {
    // vit-tiny takes 64 px and gives 48 features: not UNI (224 px, 1024).
    const f = await gradelab('features', '--backbone', vit, '--registry', 'uni', '--data', ds);
    expect(f.code).toBe(2);
    expect(f.stderr.trim().split('\n').pop()).toMatch(/vit-tiny\.onnx: .*(224|1024)/);
    writeFileSync(
      join(dir, 'registry.yaml'),
      `name: r\ntask: prostate\ndata: {dataset: ${ds}}\nmodel: {backbone: {registry: uni2-h, onnx: ${vit}}, head: softmax}\naugment: []\nbackend: wasm\n`,
    );
    const t = await gradelab(
      'train',
      '--config',
      join(dir, 'registry.yaml'),
      '--out',
      join(dir, 'm-registry'),
      '--tracking-dir',
      join(dir, 'mlruns'),
    );
    expect(t.code).toBe(2);
    expect(t.stderr.trim().split('\n')).toEqual([expect.stringMatching(/vit-tiny\.onnx: .*(224|1536)/)]);
    // Checked before anything is written: no model folder, no run.
    expect(existsSync(join(dir, 'm-registry'))).toBe(false);
    const bad = await gradelab('features', '--backbone', vit, '--registry', 'uni3', '--data', ds);
    expect([bad.code, bad.stderr.trim().split('\n').pop()]).toEqual([2, expect.stringMatching(/unknown encoder "uni3"/)]);
  });

  it('features: shards fill one cache; a bad encoder is one line and exit 2', async () => {
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'not onnx');
    const bad = await gradelab('features', '--backbone', junk, '--input-size', '64', '--data', ds);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      `gradelab: ${junk}: ONNX Runtime cannot load it: Load model from ${junk} failed: Protobuf parsing failed.`,
    ]);
    const embed = ['features', '--backbone', vit, '--input-size', '64', '--mpp', '1', '--data', ds, '--dtype', 'float16'];
    for (const i of [1, 2]) {
      const r = await gradelab(...embed, '--shard', `${i}/2`);
      expect(r.code, r.stderr).toBe(0);
    }
    const dataset = await openTileDataset(ds);
    const half = EmbeddingCache.open(dataset, {
      sha256: await sha256File(vit),
      inputSize: 64,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    })!;
    expect(half.missing(dataset.tiles)).toEqual([]);
    expect(half.dim).toBe(48);
    const sharded = half.read(dataset.tiles);
    expect(sharded.every(Number.isFinite)).toBe(true);
    // Three processes started at once on an empty cache share its slides by claims: every slide once, the same embeddings.
    rmSync(join(ds, 'embeddings'), { recursive: true, force: true });
    const runs = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
            const p = spawn(process.execPath, [bin, ...embed]);
            let stdout = '';
            let stderr = '';
            p.stdout.on('data', (b) => (stdout += b));
            p.stderr.on('data', (b) => (stderr += b));
            p.on('exit', (code) => done({ code, stdout, stderr }));
          }),
      ),
    );
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    // Each says how many slides it embedded: together, every slide exactly once.
    const embedded = runs.map((r) => Number(/^(\d+) slides embedded/m.exec(r.stdout)![1]));
    expect(embedded.reduce((a, b) => a + b, 0)).toBe(new Set(dataset.tiles.map((t) => t.slideId)).size);
    const shared = EmbeddingCache.open(dataset, half.index.encoder)!;
    expect(shared.missing(dataset.tiles)).toEqual([]);
    expect(existsSync(join(shared.dir, 'claims'))).toBe(false);
    const together = shared.read(dataset.tiles);
    // float16 storage: one process's batches and three processes' agree to the half-precision step.
    expect(Math.max(...together.map((v, i) => Math.abs(v - sharded[i])))).toBeLessThan(2e-3);
  }, 300_000);

  it('the shipped foundation experiment trains a head on cached embeddings, and is evaluated, OOD-scored and robustness-tested', async () => {
    const out = join(dir, 'f');
    // A float32 cache of its own (the features test left a float16 one, which rounds to ~1e-3).
    rmSync(join(ds, 'embeddings'), { recursive: true, force: true });
    const t = await trainFoundation(out, '--set', 'train.epochs=4', '--set', 'train.tilesPerEpoch=512', '--seeds', '3');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/head on experiments\/encoders\/vit-tiny\.onnx, 48 features\); 3 seeds: val QWK -?\d\.\d{3} \+\/- \d\.\d{3}/);
    const meta = readModelMeta(out);
    // Three heads on the same cached embeddings; the model is the first seed's, and the spread is theirs.
    const seeds = JSON.parse(readFileSync(join(out, 'seeds.json'), 'utf8'));
    expect(seeds.runs.map((r: { seed: number }) => r.seed)).toEqual([1, 2, 3]);
    // Each seed trained its own head (a seed that were ignored would repeat the first).
    expect(new Set(seeds.runs.map((r: { headSha256: string }) => r.headSha256)).size).toBe(3);
    expect(seeds.runs[0].valQwk).toBe(meta.metrics['val/qwk']);
    const test = seeds.runs.map((r: { testQwk: number }) => r.testQwk);
    const mean = test.reduce((a: number, b: number) => a + b, 0) / 3;
    const sd = Math.sqrt(test.reduce((a: number, v: number) => a + (v - mean) ** 2, 0) / 2);
    expect(seeds.test.mean).toBeCloseTo(mean, 12);
    expect(seeds.test.sd).toBeCloseTo(sd, 12);
    // t(0.975, 2) = 4.302653 (tables): the across-seed interval of the mean.
    expect(seeds.test.ci95[1] - mean).toBeCloseTo((4.302653 * sd) / Math.sqrt(3), 5);
    expect(seeds.firstSeedTestBootstrap.value).toBeCloseTo(test[0], 12);
    // The report shows the heads by seed and both intervals.
    const rep = await gradelab('report', '--run', out, '--out', join(dir, 'f-report'), '--no-track');
    expect(rep.code, rep.stderr).toBe(0);
    const model = JSON.parse(readFileSync(join(dir, 'f-report', 'report.json'), 'utf8')).sections.find(
      (s: { id: string }) => s.id === 'model',
    );
    expect(model.tables.find((tb: { caption: string }) => tb.caption === 'Heads by seed').rows.map((r: string[]) => r[0])).toEqual([
      '1',
      '2',
      '3',
    ]);
    expect(model.text.join(' ')).toContain(`trained with 3 seeds`);
    // The seeds as an arm's repeats: compare averages each arm over its runs, and each run's QWK is the one seeds.json gives.
    const seedCsv = (s: number) => join(out, 'seeds', `seed-${s}`, 'test-predictions.csv');
    for (const s of [1, 2, 3]) expect(existsSync(join(out, 'seeds', `seed-${s}`, 'head.json'))).toBe(true);
    const cmp = await gradelab('compare', '--pred', `${seedCsv(1)},${seedCsv(2)}`, '--pred', seedCsv(3), '--out', join(dir, 'f-seeds'));
    expect(cmp.code, cmp.stderr).toBe(0);
    const compared = JSON.parse(readFileSync(join(dir, 'f-seeds', 'compare.json'), 'utf8'));
    expect([compared.runsA, compared.runsB]).toEqual([2, 1]);
    const qwk = compared.metrics.find((m: { metric: string }) => m.metric === 'qwk');
    expect(qwk.a).toBeCloseTo((test[0] + test[1]) / 2, 12);
    expect(qwk.b).toBeCloseTo(test[2], 12);
    expect(meta.encoder).toMatchObject({ onnx: 'experiments/encoders/vit-tiny.onnx', inputSize: 64 });
    expect(readFileSync(join(out, 'config.yaml'), 'utf8')).toMatch(/--set train\.epochs=4/);
    // Evaluation reads the cache; the same predictions come from model.onnx with the cache gone.
    const cached = await gradelab(
      'predict',
      '--model',
      out,
      '--data',
      ds,
      '--split',
      'all',
      '--level',
      'tile',
      '--out',
      join(dir, 'f-cached.csv'),
    );
    expect(cached.code, cached.stderr).toBe(0);
    expect(cached.stderr).toMatch(/tiles from the embedding cache/);
    renameSync(join(ds, 'embeddings'), join(dir, 'embeddings-away'));
    const direct = await gradelab(
      'predict',
      '--model',
      out,
      '--data',
      ds,
      '--split',
      'all',
      '--level',
      'tile',
      '--out',
      join(dir, 'f-direct.csv'),
    );
    renameSync(join(dir, 'embeddings-away'), join(ds, 'embeddings'));
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stderr).not.toMatch(/embedding cache/);
    const a = rows(join(dir, 'f-cached.csv'));
    const b = rows(join(dir, 'f-direct.csv'));
    let worst = 0;
    a.forEach((r, i) => probs(r).forEach((p, c) => (worst = Math.max(worst, Math.abs(p - probs(b[i])[c])))));
    expect(worst).toBeLessThan(1e-4);
    expect((await gradelab('eval', '--model', out, '--data', ds, '--out', join(dir, 'f-eval'), '--resamples', '50')).code).toBe(0);
    expect(existsSync(join(dir, 'f-eval', 'metrics.json'))).toBe(true);
    expect((await gradelab('ood', 'fit', '--model', out, '--data', ds, '--method', 'knn', 'energy')).code).toBe(0);
    const oe = await gradelab('ood', 'eval', '--model', out, '--id', ds, '--ood', ds, '--out', join(dir, 'f-ood'), '--resamples', '50');
    expect(oe.code, oe.stderr).toBe(0);
    writeFileSync(
      join(dir, 'suite.yaml'),
      'name: tiny\ntilesPerSlide: 2\nconditions:\n  - {name: jpeg, transform: {name: jpeg}, severities: [1, 5]}\ncriteria:\n  - ece <= 1\n',
    );
    const rb = await gradelab(
      'robustness',
      '--model',
      out,
      '--data',
      ds,
      '--suite',
      join(dir, 'suite.yaml'),
      '--out',
      join(dir, 'f-rob'),
      '--resamples',
      '50',
      '--tracking-dir',
      join(dir, 'mlruns'),
    );
    expect(rb.code, rb.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'f-rob', 'results.json'), 'utf8')).units.map((u: { severity: number }) => u.severity)).toEqual(
      [1, 5],
    );
    expect((await gradelab('predict', '--model', out, '--data', ds, '--out', join(dir, 'x.csv'), '--engine', 'tfjs')).stderr).toMatch(
      /runs on ONNX Runtime only/,
    );
  }, 300_000);

  it('a Gleason pattern head on the cached embeddings: its rule chosen on validation, and model.onnx grades as the cache does', async () => {
    const out = join(dir, 'fp');
    const t = await trainFoundation(
      out,
      '--set',
      'model.head=patterns',
      '--set',
      'train.epochs=3',
      '--set',
      'train.tilesPerEpoch=512',
      '--seeds',
      '2',
    );
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr.match(/pattern rule chosen on \d+ validation slides/g)).toHaveLength(2);
    const meta = readModelMeta(out);
    expect(meta.head).toBe('patterns');
    expect(meta.patternGrading!.chosenOn).toMatchObject({ split: 'val', fold: 0 });
    const predict = async (name: string) => {
      const r = await gradelab('predict', '--model', out, '--data', ds, '--split', 'all', '--out', join(dir, name));
      expect(r.code, r.stderr).toBe(0);
      return { stderr: r.stderr, rows: rows(join(dir, name)) };
    };
    const cached = await predict('fp-cached.csv');
    expect(cached.stderr).toMatch(/tiles from the embedding cache/);
    renameSync(join(ds, 'embeddings'), join(dir, 'embeddings-away'));
    const direct = await predict('fp-direct.csv');
    renameSync(join(dir, 'embeddings-away'), join(ds, 'embeddings'));
    expect(direct.stderr).not.toMatch(/embedding cache/);
    // The slides' grades, scores and pattern areas are the same from ONNX Runtime on pixels.
    const columns = ['pattern_benign', 'pattern_g3', 'pattern_g4', 'pattern_g5'];
    cached.rows.forEach((r, i) => {
      const d = direct.rows[i];
      expect([d.slide_id, d.pred, d.gleason]).toEqual([r.slide_id, r.pred, r.gleason]);
      for (const c of columns) expect(Math.abs(Number(d[c]) - Number(r[c])), `${r.slide_id} ${c}`).toBeLessThanOrEqual(1e-4);
    });
    // Each grade is the ISUP rule's on the slide's areas, with the thresholds validation chose.
    for (const r of cached.rows) {
      const [benign, g3, g4, g5] = columns.map((c) => Number(r[c]));
      const score = gleasonFromAreas({ benign, g3, g4, g5 }, meta.patternGrading!.rule);
      expect([score.isup, `${score.primary}+${score.secondary}`], r.slide_id).toEqual([Number(r.pred), r.gleason]);
    }
  }, 300_000);
});
