import sharp from 'sharp';
import { log, quantile, writeFileAtomic } from '../core/index.ts';
import type { MetricsReport } from './evaluate.ts';

/** A vega-lite spec (kept loose: vega-lite validates it when compiling). */
export type VegaLiteSpec = Record<string, unknown>;

const FONT = 'DejaVu Sans';
const CONFIG = {
  font: FONT,
  axis: { labelFont: FONT, titleFont: FONT, labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFont: FONT, titleFont: FONT, labelLimit: 320 },
  title: { font: FONT, fontSize: 14 },
  view: { stroke: null },
};

/**
 * Renders a vega-lite spec headless to SVG (vega's renderer 'none', text measured with the canvas
 * package where installed) and to PNG through sharp (librsvg) at 2x for crisp text.
 */
export async function renderChart(spec: VegaLiteSpec): Promise<{ svg: string; png: Buffer }> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  // vega-lite's own logger writes to the console unprefixed; a warning here is a flaw in gradelab's spec,
  // so it goes through gradelab's log, named by the chart.
  const say = (...m: unknown[]) => log.warn(`chart "${String(spec.title ?? 'untitled')}": ${m.join(' ')}`);
  const logger = {
    level: () => logger,
    info: () => logger,
    debug: () => logger,
    warn: (...m: unknown[]) => (say(...m), logger),
    error: (...m: unknown[]) => (say(...m), logger),
  };
  const compiled = vl.compile({ config: CONFIG, background: 'white', ...spec } as never, { logger } as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  return { svg, png };
}

export async function writeChart(basePath: string, spec: VegaLiteSpec): Promise<string[]> {
  const { svg, png } = await renderChart(spec);
  await writeFileAtomic(`${basePath}.svg`, svg);
  await writeFileAtomic(`${basePath}.png`, png);
  await writeFileAtomic(`${basePath}.vl.json`, JSON.stringify(spec, null, 2));
  return [`${basePath}.svg`, `${basePath}.png`];
}

export function confusionSpec(r: MetricsReport): VegaLiteSpec {
  const values = r.confusion.flatMap((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({ truth: r.classNames[i], predicted: r.classNames[j], count, share: total ? count / total : 0 }));
  });
  return {
    title: `Confusion matrix (n = ${r.n}; QWK ${r.metrics.qwk.value.toFixed(3)})`,
    data: { values },
    width: 46 * r.k,
    height: 46 * r.k,
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: r.classNames, title: 'predicted' },
      y: { field: 'truth', type: 'ordinal', sort: r.classNames, title: 'reference' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: { color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, title: 'row share' } },
      },
      {
        mark: { type: 'text', fontSize: 12 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

export function rocSpec(r: MetricsReport): VegaLiteSpec {
  const values = r.cutoffs.flatMap((c) => c.roc.map((p) => ({ ...p, cutoff: `${c.name} (AUROC ${c.auroc.value.toFixed(3)})` })));
  return {
    title: 'ROC at the clinical cut-offs',
    width: 320,
    height: 320,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: '#999' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: '1 - specificity' },
          y: { field: 'tpr', type: 'quantitative', title: 'sensitivity' },
          color: { field: 'cutoff', type: 'nominal', title: null, legend: { orient: 'bottom-right' } },
        },
      },
    ],
  };
}

export function prSpec(r: MetricsReport): VegaLiteSpec {
  const values = r.cutoffs.flatMap((c) => c.pr.map((p) => ({ ...p, cutoff: `${c.name} (AP ${c.aupr.value.toFixed(3)})` })));
  return {
    title: 'Precision-recall at the clinical cut-offs',
    width: 320,
    height: 320,
    data: { values },
    mark: { type: 'line', interpolate: 'step-before' },
    encoding: {
      x: { field: 'recall', type: 'quantitative' },
      y: { field: 'precision', type: 'quantitative', scale: { domain: [0, 1] } },
      color: { field: 'cutoff', type: 'nominal', title: null, legend: { orient: 'bottom-left' } },
    },
  };
}

export function reliabilitySpec(r: MetricsReport): VegaLiteSpec {
  const values = r.reliability
    .filter((b) => b.count > 0)
    .map((b) => ({
      mid: (b.lower + b.upper) / 2,
      lower: b.lower,
      upper: b.upper,
      accuracy: b.accuracy,
      confidence: b.confidence,
      count: b.count,
    }));
  return {
    title: `Reliability (ECE ${r.metrics.ece.value.toFixed(3)})`,
    width: 320,
    height: 320,
    layer: [
      {
        data: { values },
        mark: { type: 'bar', opacity: 0.75 },
        encoding: {
          x: { field: 'lower', type: 'quantitative', scale: { domain: [0, 1] }, title: 'confidence (top class)' },
          x2: { field: 'upper' },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'accuracy' },
          y2: { datum: 0 },
          tooltip: [{ field: 'count' }],
        },
      },
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: '#d62728' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
    ],
  };
}

export function riskCoverageSpec(r: MetricsReport): VegaLiteSpec {
  const values = r.referral.curve.flatMap((p) => [
    { coverage: p.coverage, metric: 'QWK', value: p.qwk },
    { coverage: p.coverage, metric: 'accuracy', value: p.accuracy },
  ]);
  return {
    title: `Referral: defer the least certain cases (uncertainty: ${r.referral.uncertainty})`,
    width: 360,
    height: 260,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'coverage',
        type: 'quantitative',
        scale: { domain: [1, 0], reverse: false },
        axis: { format: '%' },
        title: 'share of cases the model keeps',
      },
      y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: 'on the kept cases' },
      color: { field: 'metric', type: 'nominal', title: null },
    },
  };
}

export function subgroupSpec(r: MetricsReport, key: 'site' | 'scanner' | 'grade', metric: 'qwk' | 'accuracy' = 'qwk'): VegaLiteSpec {
  const values = Object.entries(r.subgroups[key]).flatMap(([group, s]) => {
    const e = s[metric];
    return e ? [{ group, value: e.value, low: e.ci95[0], high: e.ci95[1], n: s.n }] : [];
  });
  return {
    title: `${metric === 'qwk' ? 'QWK' : 'Accuracy'} per ${key} with 95% CI (patient bootstrap)`,
    width: Math.max(160, 60 * values.length),
    height: 240,
    data: { values },
    encoding: { x: { field: 'group', type: 'nominal', title: key, axis: { labelAngle: 0 } } },
    layer: [
      {
        mark: { type: 'bar', color: '#4c78a8' },
        encoding: {
          y: {
            field: 'value',
            type: 'quantitative',
            title: metric,
            scale: { domain: [Math.min(0, ...values.map((v) => (Number.isFinite(v.low) ? v.low : 0))), 1] },
          },
        },
      },
      { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } },
      {
        mark: { type: 'text', dy: -8 },
        encoding: { y: { field: 'high', type: 'quantitative' }, text: { field: 'n', type: 'quantitative', format: 'd' } },
      },
    ],
  };
}

/** Training curves from a run's metric histories: one line per metric key against step. */
export function trainingCurvesSpec(series: Record<string, { step: number; value: number }[]>, title = 'Training curves'): VegaLiteSpec {
  const values = Object.entries(series).flatMap(([metric, pts]) => pts.map((p) => ({ metric, step: p.step, value: p.value })));
  return {
    title,
    width: 360,
    height: 240,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'epoch' },
      y: { field: 'value', type: 'quantitative', scale: { zero: false } },
      color: { field: 'metric', type: 'nominal', title: null },
    },
  };
}

export async function writeMetricCharts(dir: string, r: MetricsReport): Promise<string[]> {
  const files: string[] = [];
  files.push(...(await writeChart(`${dir}/confusion`, confusionSpec(r))));
  if (r.cutoffs.some((c) => Number.isFinite(c.auroc.value))) {
    files.push(...(await writeChart(`${dir}/roc`, rocSpec(r))));
    files.push(...(await writeChart(`${dir}/pr`, prSpec(r))));
  }
  files.push(...(await writeChart(`${dir}/reliability`, reliabilitySpec(r))));
  files.push(...(await writeChart(`${dir}/risk-coverage`, riskCoverageSpec(r))));
  files.push(...(await writeChart(`${dir}/per-site`, subgroupSpec(r, 'site'))));
  files.push(...(await writeChart(`${dir}/per-scanner`, subgroupSpec(r, 'scanner'))));
  files.push(...(await writeChart(`${dir}/per-grade`, subgroupSpec(r, 'grade', 'accuracy'))));
  return files;
}

/** Histogram bins computed per detector (its own range), as rows a binned bar chart draws directly. */
export function perDetectorBins(
  scores: { detector: string; set: string; score: number }[],
  bins: number,
): { detector: string; set: string; start: number; end: number; count: number }[] {
  const out: { detector: string; set: string; start: number; end: number; count: number }[] = [];
  for (const detector of [...new Set(scores.map((s) => s.detector))]) {
    const mine = scores.filter((s) => s.detector === detector && Number.isFinite(s.score));
    if (!mine.length) continue;
    const all = mine.map((s) => s.score);
    let lo = quantile(all, 0.01);
    let hi = quantile(all, 0.99);
    if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
    const width = (hi - lo) / bins;
    for (const set of [...new Set(mine.map((s) => s.set))]) {
      const counts = new Array<number>(bins).fill(0);
      for (const s of mine) if (s.set === set) counts[Math.min(bins - 1, Math.max(0, Math.floor((s.score - lo) / width)))]++;
      counts.forEach((count, i) => out.push({ detector, set, start: lo + i * width, end: lo + (i + 1) * width, count }));
    }
  }
  return out;
}
