import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers.ts';

const dir = tempDir();
const missing = join(dir, 'no-such-thing');
const notModel = join(dir, 'not-a-model');

async function run(...args: string[]): Promise<{ code: number; lines: string[] }> {
  const r = await runCli(args);
  return { code: r.code, lines: r.stderr.split('\n').filter((l) => l.trim()) };
}

afterEach(() => {
  process.exitCode = undefined;
});

beforeAll(() => {
  writeFileSync(join(dir, 'bad.yaml'), 'name: x\ntask: prostate\ndata: {dataset: d}\ntrain: {epoch: 3}\n');
  writeFileSync(join(dir, 'pred.csv'), 'slide_id,patient_id,site,scanner,label,pred,prob_0,prob_1\na,p,s,s,0,0,0.9,0.1\n');
  writeFileSync(join(dir, 'empty.yaml'), '');
});

/**
 * Every command, with an argument missing or wrong: exit 2 and one line that names the problem, before
 * any work (nothing is written where the command would write).
 */
const cases: [string[], RegExp][] = [
  [['slide', 'info'], /Not enough non-option arguments|file/],
  [['slide', 'info', missing], /no-such-thing/],
  [
    ['slide', 'region', missing, '--level', '0', '--x', '0', '--y', '0', '--width', '10', '--height', '10', '--out', join(dir, 'r.png')],
    /no-such-thing/,
  ],
  [
    ['slide', 'region', missing, '--level', 'zero', '--x', '0', '--y', '0', '--width', '10', '--height', '10', '--out', 'r.png'],
    /--level must be a number/,
  ],
  [['tile', '--out', join(dir, 't')], /Missing required argument: manifest/],
  [['tile', '--manifest', missing, '--out', join(dir, 't'), '--tile-size', '64', '--mpp', '1'], /no-such-thing/],
  [['split', missing, '--folds', '5'], /no-such-thing/],
  [['dataset', 'info', missing], /no-such-thing/],
  [['synth', '--task', 'prostate', '--slides', '2', '--out', join(dir, 's'), '--bogus', '1'], /Unknown argument: bogus/],
  [['synth', '--task', 'lung', '--slides', '2', '--out', join(dir, 's')], /Invalid values|task/],
  [
    ['synth', '--task', 'prostate', '--slides', '2', '--out', join(dir, 's'), '--anomaly-kinds', 'lymphoid,lymphoma'],
    /unknown anomaly kind "lymphoma"/,
  ],
  [['runs', 'show', 'nope', '--tracking-dir', join(dir, 'mlruns')], /mlruns: no tracking store there/],
  [['metrics', '--pred', missing, '--out', join(dir, 'm')], /no-such-thing/],
  [['compare', '--pred', join(dir, 'pred.csv'), '--out', join(dir, 'c')], /exactly two --pred/],
  [
    ['compare', '--pred', `${join(dir, 'pred.csv')},${missing}`, '--pred', join(dir, 'pred.csv'), '--out', join(dir, 'c')],
    /no-such-thing: predictions file not found/,
  ],
  [['train'], /give --config, or --resume/],
  [['train', '--config', join(dir, 'bad.yaml')], /bad\.yaml: train: unknown key "epoch"/],
  [['train', '--config', missing], /no-such-thing: experiment file not found/],
  [['train', '--config', join(dir, 'bad.yaml'), '--set', 'nonsense'], /--set nonsense: expected key\.path=value/],
  [['predict', '--model', notModel, '--data', missing, '--out', join(dir, 'p.csv')], /not-a-model|no-such-thing/],
  [['predict', '--model', notModel, '--data', missing], /Missing required argument: out/],
  [['predict', 'merge', join(dir, 'pred.csv'), missing, '--out', join(dir, 'pm.csv')], /no-such-thing/],
  [['eval', '--model', notModel, '--data', missing, '--out', join(dir, 'e'), '--engine', 'magic'], /Invalid values|engine/],
  [['export', '--model', notModel], /not-a-model/],
  [['features', '--data', missing], /give --backbone|no-such-thing/],
  [['features', '--backbone', missing, '--input-size', '64', '--data', missing], /no-such-thing/],
  [['models'], /Not enough non-option arguments|name/],
  [['ood', 'fit', '--model', notModel, '--data', missing, '--method', 'magic'], /unknown OOD method "magic"/],
  [['ood', 'eval', '--model', notModel, '--id', missing, '--ood', missing, '--out', join(dir, 'o')], /not-a-model|no-such-thing/],
  [['mil', 'fit', '--model', notModel, '--data', missing, '--epochs', '0'], /--epochs must be a positive integer/],
  [['robustness', '--model', notModel, '--data', missing, '--suite', missing, '--out', join(dir, 'r')], /no-such-thing/],
  [['robustness', 'merge', missing, '--out', join(dir, 'rm')], /no-such-thing/],
  [
    ['robustness', '--model', notModel, '--data', missing, '--suite', missing, '--out', join(dir, 'r'), '--shard', '3/2'],
    /--shard must be I\/N|no-such-thing/,
  ],
  [['audit', '--model', notModel, '--site-data', missing, '--out', join(dir, 'a')], /not-a-model|no-such-thing|--train-data/],
  [['report', '--run', notModel, '--out', join(dir, 'rep')], /not-a-model/],
  [['calibrate', '--model', notModel, '--data', missing], /not-a-model|no-such-thing/],
  [['calibrate', '--model', notModel, '--data', missing, '--resamples', '5'], /--resamples must be an integer of at least 100/],
  [['mrmc', '--ratings', missing], /no-such-thing: ratings file not found/],
  [['precision', '--model', notModel, '--data', missing, '--out', join(dir, 'pr')], /give --rescans K --scanner S .* or --scanners/],
  [
    ['precision', '--model', notModel, '--data', missing, '--out', join(dir, 'pr'), '--rescans', '1', '--scanner', 'noisy-dim'],
    /--rescans must be an integer of at least 2/,
  ],
  [['precision', '--model', notModel, '--data', missing, '--out', join(dir, 'pr'), '--scanners', 'noisy-dim,nope'], /nope/],
  [
    ['precision', '--model', notModel, '--data', missing, '--out', join(dir, 'pr'), '--rescans', '2', '--scanner', 'noisy-dim'],
    /not-a-model/,
  ],
  [['mrmc', '--template', join(dir, 't.csv')], /--template needs --predictions/],
  [
    ['report', '--run', notModel, '--out', join(dir, 'rep'), '--intended-use', join(dir, 'empty.yaml'), '--eval', missing],
    /not-a-model|no-such-thing/,
  ],
  [['augment', 'preview', '--pipeline', missing, '--image', missing, '--out', join(dir, 'g.png')], /no-such-thing/],
  [['demo', '--quick', '--typo'], /Unknown argument: typo/],
  [['heatmap', '--model', notModel, '--slide', missing, '--out', join(dir, 'h')], /not-a-model|no-such-thing/],
  [['heatmap', '--model', notModel], /not-a-model|give the slides/],
  [['view', join(dir, 'pred.csv'), '--export', join(dir, 'v')], /pred\.csv: not a slide: unrecognised magic bytes/],
  [['view', missing, '--port', '70000'], /--port must be 0-65535/],
  [['view', '--pred', missing], /no-such-thing: no such folder of heatmaps/],
  [['export-annotations', '--pred', dir, '--format', 'asap'], /holds no heatmap\.json/],
  [['export-annotations', '--pred', dir, '--format', 'svg'], /Invalid values|format/],
  [
    ['slurm', 'submit', 'tile', '--array', '2', '--', '--manifest', missing, '--out', join(dir, 't')],
    /--manifest .*no-such-thing: not found/,
  ],
  [['slurm', 'submit', 'tile', '--array', '0', '--', '--manifest', missing, '--out', join(dir, 't')], /--array must be a whole number/],
  [['slurm', 'submit', 'predict', '--array', '2', '--', '--model', dir, '--data', dir], /gradelab predict on a cluster needs --out/],
  [
    ['slurm', 'submit', 'tile', '--array', '2', '--', '--manifest', join(dir, 'pred.csv'), '--out', join(dir, 't'), '--shard', '1/2'],
    /--shard is set by the array itself/,
  ],
  [['slurm', 'submit', 'split', '--array', '2'], /Invalid values|command/],
  [['slurm', 'status', missing], /no-such-thing: folder not found/],
  [['slurm', 'status', dir], /no SLURM submission recorded here/],
  [
    [
      'kubernetes',
      'tile',
      '--tasks',
      '2',
      '--image',
      'i',
      '--pvc',
      'p',
      '--name',
      'Bad_Name',
      '--',
      '--manifest',
      '/d/m.csv',
      '--out',
      '/d/t',
    ],
    /--name Bad_Name: a Job name is lower-case/,
  ],
];

describe('every command refuses bad input with exit 2 and one line, before any work', () => {
  it.each(cases)('gradelab %j', async (args, message) => {
    const r = await run(...args);
    if (process.env.SHOW_LINES) console.log(args.join(' '), '=>', r.lines.join(' | '));
    expect(r.code, r.lines.join('\n')).toBe(2);
    expect(r.lines, r.lines.join('\n')).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^gradelab: /);
    expect(r.lines[0]).toMatch(message);
    expect(r.lines[0]).not.toMatch(/internal error|at .*\.ts:\d+/);
  });
});

describe('the viewer refuses a port in use', () => {
  it('exit 2, one line, no server left running', async () => {
    const { createServer } = await import('node:net');
    const sharp = (await import('sharp')).default;
    const slide = join(dir, 'plain.png');
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#d0a0c0' } })
      .png()
      .toFile(slide);
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await run('view', slide, '--port', String(port));
      expect(r.code).toBe(2);
      expect(r.lines).toEqual([`gradelab: port ${port} on 127.0.0.1 is in use: choose another with --port`]);
    } finally {
      blocker.close();
    }
  });
});
