import { join } from 'node:path';
import { writeFileAtomic } from '../core/index.ts';
import { perDetectorBins, writeChart } from './charts.ts';
import { fmtEstimate } from './metricsFiles.ts';
import { bestDetectorPerGroup, type OodStudy } from './oodStudy.ts';
import type { OodMetrics } from './oodEval.ts';

/**
 * ood.md and the charts of an OOD evaluation: per detector AUROC and FPR@95TPR at tile and slide level,
 * near and far; which detector catches which anomaly; score histograms (each detector on its own axis)
 * and ROC curves. Returns the table (header first) for the command to print.
 */
export async function writeOodStudy(
  out: string,
  header: string,
  study: OodStudy,
  grading: string,
  charts: { hist: Record<string, unknown>[]; rocs: Record<string, unknown>[] },
): Promise<string[][]> {
  const f = (m: OodMetrics | null | undefined, key: 'auroc' | 'fpr95' = 'auroc') => (m ? fmtEstimate(m[key]) : '-');
  const names = Object.keys(study.detectors);
  const rows = names.map((n) => {
    const r = study.detectors[n];
    return [
      n,
      f(r.all.tile),
      f(r.all.tile, 'fpr95'),
      f(r.all.slide),
      f(r.groups.near?.slide),
      f(r.groups.far?.slide),
      f(r.groups.far?.tile),
    ];
  });
  const head = [
    'detector',
    'AUROC (tiles)',
    'FPR@95TPR (tiles)',
    'AUROC (slides)',
    'near-OOD AUROC (slides)',
    'far-OOD AUROC (slides)',
    'far-OOD AUROC (tiles)',
  ];
  const summary = ['near', 'far', 'unlabelled'];
  const groups = [...new Set(names.flatMap((n) => Object.keys(study.detectors[n].groups)))].sort(
    (a, b) => summary.indexOf(a) - summary.indexOf(b) || a.localeCompare(b),
  );
  const best = bestDetectorPerGroup(study);
  const families = groups.map((g) => [
    g,
    ...names.map((n) => {
      const m = study.detectors[n].groups[g];
      const v = m?.slide.auroc.value;
      return v === undefined || !Number.isFinite(v)
        ? '-'
        : `${best[g]?.detector === n ? '**' : ''}${v.toFixed(2)}${best[g]?.detector === n ? '**' : ''}`;
    }),
  ]);
  const truth =
    study.tileTruth === 'mask'
      ? `Tile level: a tile is OOD when its label mask marks at least ${study.tileThreshold * 100}% of it anomalous (${study.oodTilesUsed} tiles); ${study.tilesExcluded} tiles of OOD slides below that are left out.`
      : 'Tile level: no label masks, so every tile of an OOD slide counts as OOD (anomalies cover part of a slide: this understates tile-level detection).';
  const md = [
    header,
    '',
    truth,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '## Which detector catches which anomaly',
    '',
    "Slide-level AUROC per anomaly class (best in bold). qc-* detectors read the tiles' pixels (focus, ink, folds and bubbles, stain); the others read the model's features and logits.",
    '',
    `| anomaly | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---').join('|')}|`,
    ...families.map((r) => `| ${r.join(' | ')} |`),
    '',
    grading,
    '',
  ];
  await writeFileAtomic(join(out, 'ood.md'), `${md.join('\n')}\n`);
  // Each detector on its own scale (energy is near -10, qc-all in the millions): bins per detector,
  // between its 1st and 99th percentile, the rest counted in the end bins.
  await writeChart(join(out, 'ood-histograms'), {
    title: 'OOD scores: in-distribution vs OOD tiles (each detector on its own axis)',
    data: { values: perDetectorBins(charts.hist as { detector: string; set: string; score: number }[], 30) },
    mark: { type: 'bar', opacity: 0.6 },
    encoding: {
      x: { field: 'start', type: 'quantitative', bin: 'binned', title: 'score' },
      x2: { field: 'end' },
      y: { field: 'count', type: 'quantitative', stack: null, title: 'tiles' },
      color: { field: 'set', type: 'nominal' },
      facet: { field: 'detector', type: 'nominal', columns: 4 },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    width: 180,
    height: 110,
  });
  await writeChart(join(out, 'ood-roc'), {
    title: 'ROC per detector (tiles; OOD positive)',
    data: { values: charts.rocs },
    mark: { type: 'line', interpolate: 'step-after' },
    width: 320,
    height: 320,
    encoding: {
      x: { field: 'fpr', type: 'quantitative', title: 'false positive rate (ID flagged)' },
      y: { field: 'tpr', type: 'quantitative', title: 'true positive rate (OOD caught)' },
      color: { field: 'detector', type: 'nominal' },
    },
  });
  return [head, ...rows];
}
