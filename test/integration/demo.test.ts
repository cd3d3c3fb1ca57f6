import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.ts';
import { readContract } from '../../src/onnx/index.ts';

const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const out = join(tempDir(), 'demo');
let demo: { code: number | null; stdout: string; stderr: string };

function gradelab(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root, timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  demo = gradelab('demo', '--quick', '--out', out);
}, 600_000);

describe('gradelab demo --quick', () => {
  it('runs end to end and says where each output is', () => {
    expect(demo.code, demo.stderr.slice(-2000)).toBe(0);
    expect(demo.stdout).toMatch(/demo finished in \d+ s/);
    for (const f of [
      'report/report.html',
      'report/report.pdf',
      'report/report.json',
      'eval/metrics.json',
      'ood/ood.json',
      'robustness/stain-shift/results.json',
      'audit/audit.json',
      'precision/repeatability/precision.json',
      'precision/reproducibility/precision.json',
      'representation/stain-aug/representation.json',
      'representation/no-aug/croma.png',
      'representation/foundation/representation.json',
      'models/foundation/seeds.json',
      'models/foundation/seeds/seed-3/test-predictions.csv',
      'models/stain-aug/gradelab.json',
      'models/no-aug/gradelab.json',
      'viewer/held-out/index.html',
      'viewer/site-D/index.html',
      'heatmaps/held-out/index.json',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const runs = JSON.parse(gradelab('runs', 'list', '--tracking-dir', join(out, 'mlruns'), '--json').stdout);
    expect(runs.some((r: any) => r.runName === 'demo-stain-aug' && r.status === 'FINISHED')).toBe(true);
  });

  it("the report carries every section, and its numbers are the evaluation's", () => {
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    expect(report.sections.map((s: any) => s.id)).toEqual([
      'intended-use',
      'data',
      'reference-standard',
      'model',
      'performance',
      'calibration',
      'precision',
      'comparisons',
      'referral',
      'robustness',
      'representation',
      'ood',
      'limitations',
      'traceability',
    ]);
    const metrics = JSON.parse(readFileSync(join(out, 'eval', 'metrics.json'), 'utf8'));
    // Both models were calibrated before evaluation: the model files, the ONNX metadata and the report agree on T.
    const calibrated = JSON.parse(readFileSync(join(out, 'models', 'stain-aug', 'calibration', 'calibration.json'), 'utf8'));
    expect(JSON.parse(readFileSync(join(out, 'models', 'stain-aug', 'gradelab.json'), 'utf8')).calibration.temperature).toBe(
      calibrated.temperature,
    );
    expect(readContract(join(out, 'models', 'stain-aug', 'model.onnx'))!.temperature).toBe(calibrated.temperature);
    expect(calibrated.after.nll).toBeLessThanOrEqual(calibrated.before.nll);
    expect(existsSync(join(out, 'models', 'no-aug', 'calibration', 'calibration.json'))).toBe(true);
    const cal = report.sections.find((s: any) => s.id === 'calibration');
    expect(cal.text[0]).toContain(`T = ${calibrated.temperature.toFixed(3)}`);
    expect(cal.text[2]).toContain(`ECE ${metrics.ece.value.toFixed(3)}`);
    const perf = report.sections.find((s: any) => s.id === 'performance');
    const qwkRow = perf.tables[0].rows.find((r: string[]) => r[0] === 'QWK');
    expect(qwkRow[1]).toBe(`${metrics.qwk.value.toFixed(3)} (${metrics.qwk.ci95[0].toFixed(3)}-${metrics.qwk.ci95[1].toFixed(3)})`);
    const html = readFileSync(join(out, 'report', 'report.html'), 'utf8');
    expect(html).toContain(metrics.qwk.value.toFixed(3));
    expect(html).toMatch(/<img alt="Confusion matrix" src="data:image\/png;base64,/);
    expect(
      readFileSync(join(out, 'report', 'report.pdf'))
        .subarray(0, 5)
        .toString(),
    ).toBe('%PDF-');
    expect(report.sections.flatMap((s: any) => s.missing)).toEqual([]);
    // No machine's absolute path: the report names its inputs relative to its own folder.
    for (const f of ['report.json', 'report.html']) expect(readFileSync(join(out, 'report', f), 'utf8'), f).not.toContain(out);
    // The paired comparison on the held-out set, as compare wrote it.
    const compared = JSON.parse(readFileSync(join(out, 'compare', 'held-out', 'compare.json'), 'utf8'));
    const qwk = compared.metrics.find((m: any) => m.metric === 'qwk');
    const table = report.sections
      .find((s: any) => s.id === 'comparisons')
      .tables.find((t: any) => t.caption.includes(`${compared.slides} slides`));
    const row = table.rows.find((r: string[]) => r[0] === 'qwk');
    expect(row[3]).toBe(
      `${qwk.difference.value.toFixed(3)} (${qwk.difference.ci95[0].toFixed(3)} to ${qwk.difference.ci95[1].toFixed(3)})`,
    );
  });

  it("the report's worst cases are the misgraded held-out slides of the evaluation set, each linked into the viewer that shows it", () => {
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    const table = report.sections.find((s: any) => s.id === 'limitations').tables.find((t: any) => t.caption.startsWith('Worst cases'));
    const csv = readFileSync(join(out, 'eval', 'predictions.csv'), 'utf8')
      .trim()
      .split('\n');
    const head = csv[0].split(',');
    const inSet = new Set(JSON.parse(readFileSync(join(out, 'eval', 'metrics.json'), 'utf8')).evaluation_set.slides);
    const misgraded = csv.slice(1).filter((l) => {
      const f = l.split(',');
      return inSet.has(f[head.indexOf('slide_id')]) && f[head.indexOf('label')] !== f[head.indexOf('pred')];
    });
    // The anomalous slides are out of the set, and listed apart.
    const outside = report.sections
      .find((s: any) => s.id === 'limitations')
      .tables.find((t: any) => t.caption.startsWith('Slides outside'));
    expect(outside.rows.every((r: string[]) => r[2].startsWith('anomalous') || r[2] === 'ood-flagged')).toBe(true);
    expect(outside.rows.length + inSet.size).toBe(csv.length - 1);
    expect(table.caption).toContain(`of ${misgraded.length} misgraded slides`);
    expect(table.rows.length).toBe(Math.min(10, misgraded.length));
    const distances = table.rows.map((r: string[]) => Number(r[5]));
    expect(distances.every((d: number, i: number) => d >= 1 && (i === 0 || d <= distances[i - 1]))).toBe(true);
    const viewerIds = readFileSync(join(out, 'viewer', 'held-out', 'data.js'), 'utf8');
    const html = readFileSync(join(out, 'report', 'report.html'), 'utf8');
    table.rows.forEach((r: string[], i: number) => {
      const link = table.links[i];
      expect(link).toBe(`../viewer/held-out/index.html#slide=${encodeURIComponent(r[0])}&overlay=grade`);
      expect(viewerIds).toContain(`"id":"${r[0]}"`);
      expect(existsSync(join(out, 'report', link.split('#')[0]))).toBe(true);
      expect(html).toContain(`<a href="${link.replace(/&/g, '&amp;')}">open</a>`);
    });
  });

  it('one slide, one grade: eval, predict, the heatmaps (from the dataset and from the slides), the viewer and the report agree', () => {
    const predsOf = (csvPath: string) => {
      const lines = readFileSync(csvPath, 'utf8').trim().split('\n');
      const head = lines[0].split(',');
      return new Map(lines.slice(1).map((l) => [l.split(',')[head.indexOf('slide_id')], Number(l.split(',')[head.indexOf('pred')])]));
    };
    const evalPreds = predsOf(join(out, 'eval', 'predictions.csv'));
    expect(evalPreds.size).toBeGreaterThan(10);
    const model = join(out, 'models', 'stain-aug');
    const predicted = join(out, 'one-grade', 'predict.csv');
    const p = gradelab('predict', '--model', model, '--data', join(out, 'held-out-tiles'), '--split', 'all', '--out', predicted);
    expect(p.code, p.stderr).toBe(0);
    expect([...predsOf(predicted)]).toEqual([...evalPreds]);
    // Heatmaps from the slide files, tiled as the model's training tiles were: the same tiles, the same pixels.
    const fromSlides = join(out, 'one-grade', 'heatmaps');
    const h = gradelab('heatmap', '--model', model, '--manifest', join(out, 'held-out-slides', 'manifest.csv'), '--out', fromSlides);
    expect(h.code, h.stderr).toBe(0);
    const labels = ['ISUP 0', 'ISUP 1', 'ISUP 2', 'ISUP 3', 'ISUP 4', 'ISUP 5'];
    const viewer = JSON.parse(
      readFileSync(join(out, 'viewer', 'held-out', 'data.js'), 'utf8')
        .replace(/^window\.GRADELAB = /, '')
        .replace(/;\s*$/, ''),
    );
    const shown = new Map(viewer.slides.map((v: any) => [v.id, v.summary?.pred]));
    for (const [id, pred] of evalPreds) {
      for (const dir of [join(out, 'heatmaps', 'held-out'), fromSlides]) {
        const map = JSON.parse(readFileSync(join(dir, id, 'heatmap.json'), 'utf8'));
        expect(map.slidePrediction?.pred, `${dir} ${id}`).toBe(pred);
      }
      expect(shown.get(id), `viewer ${id}`).toBe(labels[pred]);
    }
    // Intended use: the unseen site's scanner is not one the model was trained on, and every output says so.
    const siteRows = readFileSync(join(out, 'site-D-predictions', 'stain-aug.csv'), 'utf8')
      .trim()
      .split('\n');
    const col = (name: string) => siteRows[0].split(',').indexOf(name);
    expect(siteRows.slice(1).every((l) => l.split(',')[col('in_scope')] === 'no')).toBe(true);
    expect(siteRows[1]).toContain('scanner ""faded-yellow"" is not one the model was trained on');
    const heldRows = readFileSync(join(out, 'eval', 'predictions.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(heldRows.slice(1).some((l) => l.split(',')[heldRows[0].split(',').indexOf('in_scope')] === 'yes')).toBe(true);
    // The audit grades the unseen site's slides as predict does, OOD flags included.
    const audit = JSON.parse(readFileSync(join(out, 'audit', 'audit.json'), 'utf8'));
    const sitePreds = predsOf(join(out, 'site-D-predictions', 'stain-aug.csv'));
    expect(audit.slides.length).toBe(sitePreds.size);
    for (const s of audit.slides) expect(s.pred, `audit ${s.slideId}`).toBe(sitePreds.get(s.slideId));
    expect(audit.findings.at(-1)).toMatch(
      new RegExp(`^${audit.slides.length} of ${audit.slides.length} slides are outside the model's intended use`),
    );
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    const worst = report.sections.find((s: any) => s.id === 'limitations').tables.find((t: any) => t.caption.startsWith('Worst cases'));
    for (const row of worst.rows) expect(row[4], `report ${row[0]}`).toBe(labels[evalPreds.get(row[0])!]);
  });

  it('precision: rescans through an acquisition without randomness agree exactly; the report shows both studies', () => {
    const zero = join(out, 'zero-noise.yaml');
    writeFileSync(zero, 'name: zero-noise\ndescription: no noise, no illumination, no blur, no JPEG\njpegQuality: 100\n');
    const dir = join(out, 'precision-zero');
    const r = gradelab(
      'precision',
      '--model',
      join(out, 'models', 'stain-aug'),
      '--data',
      join(out, 'held-out-tiles'),
      '--split',
      'all',
      '--rescans',
      '3',
      '--scanner',
      zero,
      '--tiles-per-slide',
      '4',
      '--resamples',
      '100',
      '--out',
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(readFileSync(join(dir, 'precision.json'), 'utf8'));
    expect([p.identical.value, p.pairwiseKappa.value, p.meanAbsoluteDifference.value]).toEqual([1, 1, 0]);
    expect(p.flips.every((f: any) => f.rate.value === 0)).toBe(true);
    // And the acquisitions are really applied: a scanner that renders every tile nearly black grades
    // all slides alike, unlike the noise-free one, so the two cannot agree on every slide.
    const dark = join(out, 'dark.yaml');
    writeFileSync(dark, 'name: dark\ndescription: everything below white is black\ncolour: {black: 254, white: 255}\njpegQuality: 100\n');
    const d = gradelab(
      'precision',
      ...['--model', join(out, 'models', 'stain-aug'), '--data', join(out, 'held-out-tiles'), '--split', 'all'],
      ...['--scanners', `${zero},${dark}`, '--tiles-per-slide', '4', '--resamples', '100', '--out', join(out, 'precision-dark')],
    );
    expect(d.code, d.stderr).toBe(0);
    const darkStudy = JSON.parse(readFileSync(join(out, 'precision-dark', 'precision.json'), 'utf8'));
    expect(new Set(darkStudy.perSlide.map((s: any) => s.grades[0])).size).toBeGreaterThan(1);
    expect(darkStudy.identical.value).toBeLessThan(1);
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    const section = report.sections.find((s: any) => s.id === 'precision');
    expect(section.tables.map((t: any) => t.caption.split(':')[0])).toEqual(['repeatability', 'reproducibility']);
    const repro = JSON.parse(readFileSync(join(out, 'precision', 'reproducibility', 'precision.json'), 'utf8'));
    expect(repro.acquisitions).toEqual(['neutral-reference', 'warm-bright', 'cool-contrast']);
    expect(section.tables[1].rows[0][1]).toMatch(new RegExp(`^${repro.identical.value.toFixed(3)}`));
  });

  it("representation robustness: the per-sample file gives the summary's CRoMa figures, the report shows both models, and bad flags are one line", () => {
    for (const name of ['stain-aug', 'no-aug', 'foundation']) {
      const dir = join(out, 'representation', name);
      const r = JSON.parse(readFileSync(join(dir, 'representation.json'), 'utf8'));
      const rows = readFileSync(join(dir, 'croma.csv'), 'utf8').trim().split('\n').slice(1);
      expect(rows.length).toBe(r.samples);
      const margins = rows
        .map((l) => l.split(',').at(-1)!)
        .filter((v) => v !== '')
        .map(Number);
      expect(margins.length).toBe(r.samples - r.neighbours.croma.undefined);
      expect(r.neighbours.croma.f0.value).toBeCloseTo(margins.filter((v) => v <= 0).length / margins.length, 12);
      expect(r.confounderValues).toEqual(['site-A', 'site-B', 'site-C']);
      for (const v of [r.neighbours.ri.value, r.neighbours.mari.value, r.decodability.balancedAccuracy.value]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(r.neighbours.kSelection.map((k: any) => k.k)).toEqual([5, 11, 21]);
    }
    const report = JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8'));
    const section = report.sections.find((s: any) => s.id === 'representation');
    expect(section.tables.map((t: any) => t.caption.split(',')[0])).toEqual([
      'model stain-aug (resnet features)',
      'model no-aug (resnet features)',
      'model foundation (onnx:vit-tiny.onnx features)',
    ]);
    expect(section.charts.length).toBeGreaterThanOrEqual(3);
    // The foundation track: three heads on the encoder's cached embeddings, each kept.
    const seeds = JSON.parse(readFileSync(join(out, 'models', 'foundation', 'seeds.json'), 'utf8'));
    expect(seeds.runs.map((r: any) => r.seed)).toEqual([1, 2, 3]);
    expect(new Set(seeds.runs.map((r: any) => r.headSha256)).size).toBe(3);
    // Its own report ranks the OOD detectors on the encoder's features, the Mahalanobis family among them.
    const fr = JSON.parse(readFileSync(join(out, 'foundation', 'report', 'report.json'), 'utf8'));
    const oodRows = fr.sections.find((s: any) => s.id === 'ood').tables.flatMap((t: any) => t.rows.map((r: string[]) => r[0]));
    expect(oodRows).toEqual(['msp', 'mahalanobis', 'rmds', 'mahalanobis++', 'knn', 'vim']);
    expect(fr.sections.some((s: any) => s.id === 'representation')).toBe(true);
    // The audit asks the same question of the unseen site: can the features tell it from the training data?
    const audit = JSON.parse(readFileSync(join(out, 'audit', 'audit.json'), 'utf8'));
    expect(audit.separability.decodability.value).toBeGreaterThanOrEqual(0);
    expect(audit.findings.some((f: string) => f.startsWith('A linear probe on the model'))).toBe(true);
    const model = join(out, 'models', 'stain-aug');
    for (const [flags, message] of [
      [['--label', 'gleason'], /no label column "gleason"/],
      [['--features', 'uni'], /give one of --model DIR, --backbone ENCODER.onnx or --features NAME/],
      [['--k', '5,0'], /--k takes positive integers/],
    ] as const) {
      const r = gradelab(
        'robustness',
        'embeddings',
        '--model',
        model,
        '--data',
        join(out, 'tiles'),
        '--out',
        join(out, 'rep-bad'),
        ...flags,
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(out, 'rep-bad'))).toBe(false);
    }
  });

  it('a missing input is reported as missing, and user text is escaped', () => {
    const bare = join(out, 'report-bare');
    const r = gradelab('report', '--run', join(out, 'models', 'stain-aug'), '--out', bare, '--no-track');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(bare, 'report.json'), 'utf8'));
    const missing = report.sections.flatMap((s: any) => s.missing);
    expect(missing.some((m: string) => /intended use/.test(m))).toBe(true);
    expect(missing.some((m: string) => /performance/.test(m))).toBe(true);
    expect(readFileSync(join(bare, 'report.html'), 'utf8')).toContain('MISSING: intended use');
    const { writeFileSync } = require('node:fs') as typeof import('node:fs');
    writeFileSync(join(out, 'evil.yaml'), 'intendedUse: "<script>alert(1)</script> & more"\n');
    const e = gradelab(
      'report',
      '--run',
      join(out, 'models', 'stain-aug'),
      '--out',
      join(out, 'report-evil'),
      '--intended-use',
      join(out, 'evil.yaml'),
      '--no-track',
    );
    expect(e.code, e.stderr).toBe(0);
    const noViewer = gradelab(
      'report',
      '--run',
      join(out, 'models', 'stain-aug'),
      '--out',
      join(out, 'report-nv'),
      '--viewer',
      join(out, 'eval'),
      '--no-track',
    );
    expect(noViewer.code).toBe(2);
    expect(noViewer.stderr.trim().split('\n')).toHaveLength(1);
    expect(noViewer.stderr).toMatch(/eval: not a viewer export/);
    expect(existsSync(join(out, 'report-nv'))).toBe(false);
    const html = readFileSync(join(out, 'report-evil', 'report.html'), 'utf8');
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; more');
  });

  it.each(['explore-dataset', 'compare-runs', 'robustness-curves'])('notebook %s executes headless', (name) => {
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin', 'run-ts.mjs'), join(root, 'notebooks', 'run-notebook.ts'), join(root, 'notebooks', `${name}.ipynb`)],
      { encoding: 'utf8', cwd: root, timeout: 600_000, env: { ...process.env, GRADELAB_DEMO: out } },
    );
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(50);
  });
});
