import { join } from 'node:path';
import { z } from 'zod';
import { loadJsonFile } from '../core/index.ts';
import type { VegaLiteSpec } from './charts.ts';
import { estimateJson } from './fileContracts.ts';

/** representation.json (gradelab robustness embeddings): how much an embedding encodes its confounder. */
export const representationFileSchema = z
  .object({
    format: z.literal('gradelab-representation/1'),
    source: z.string(),
    label: z.string(),
    confounder: z.string(),
    group: z.string(),
    samples: z.number(),
    slides: z.number(),
    groups: z.number(),
    dim: z.number(),
    classes: z.array(z.string()),
    confounderValues: z.array(z.string()),
    neighbours: z.object({
      k: z.number(),
      kSelection: z.array(z.object({ k: z.number(), balancedAccuracy: z.number().nullable() })),
      support: z.number(),
      ri: estimateJson,
      mari: estimateJson,
      tau: z.number(),
      m: z.number(),
      croma: z.object({ median: estimateJson, ltm10: estimateJson, f0: estimateJson, undefined: z.number() }),
    }),
    decodability: z.object({ balancedAccuracy: estimateJson, chance: z.number(), folds: z.number() }),
    sweep: z.union([
      z.object({
        confounderValues: z.tuple([z.string(), z.string()]),
        classes: z.array(z.string()),
        smallestCell: z.number(),
        testSlidesPerCell: z.number(),
        cramersV: z.array(z.number()),
        accuracies: z.array(z.array(z.number())),
        chance: z.number(),
        apd: z.number().nullable(),
        nipd: z.number().nullable(),
      }),
      z.object({ skipped: z.string() }),
    ]),
  })
  .loose();
export type RepresentationFile = z.infer<typeof representationFileSchema>;
export const readRepresentationFile = (dir: string): RepresentationFile =>
  loadJsonFile(join(dir, 'representation.json'), representationFileSchema, 'representation robustness (gradelab robustness embeddings)');

/** A figure to 3 decimals, or n/a where it is not defined. */
export const fmtFixed = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
/** An estimate with its interval written "lo to hi" (margins and differences go negative). */
export const fmtInterval = (e: z.infer<typeof estimateJson>) =>
  e.value === null
    ? 'n/a'
    : `${e.value.toFixed(3)}${e.ci95[0] === null || e.ci95[1] === null ? '' : ` (${e.ci95[0].toFixed(3)} to ${e.ci95[1].toFixed(3)})`}`;

/** One sentence a reader can act on: which side of the embedding wins, by how much. */
export function representationVerdict(r: RepresentationFile): string {
  const n = r.neighbours;
  const ri = n.ri.value ?? NaN;
  const side = ri > 0.5 ? 'biology' : ri < 0.5 ? `the ${r.confounder}` : 'neither';
  const decoded = r.decodability.balancedAccuracy.value ?? NaN;
  return (
    `Among each sample's nearest neighbours from other ${r.group}s, ${side} dominates the typed evidence (RI ${fmtInterval(n.ri)}; ` +
    `${fmtFixed(n.croma.f0.value)} of samples are closer to a same-${r.confounder} impostor than to a same-${r.label} match); ` +
    `a linear probe names the ${r.confounder} at balanced accuracy ${fmtInterval(r.decodability.balancedAccuracy)} against chance ${fmtFixed(r.decodability.chance)}` +
    `${decoded > r.decodability.chance + 0.2 ? `, so the embedding encodes where a slide came from` : ''}.`
  );
}

export function representationMarkdown(r: RepresentationFile): string {
  const n = r.neighbours;
  const sweep = 'skipped' in r.sweep ? undefined : r.sweep;
  return `# Representation robustness: ${r.label} against ${r.confounder}

${r.samples} tile embeddings (${r.dim} features) of ${r.slides} slides, ${r.groups} ${r.group}s; source ${r.source}.
Classes: ${r.classes.join(', ')}. ${r.confounder}: ${r.confounderValues.join(', ')}.
Cosine distances on L2-normalised embeddings; neighbours of the same ${r.group} are never counted.
95% CIs: percentile bootstrap over ${r.group}s.

${representationVerdict(r)}

| metric | value (95% CI) | reads |
|---|---|---|
| RI (k = ${n.k}) | ${fmtInterval(n.ri)} | share of typed neighbours that share the biology (1 robust, 0 confounded, 0.5 neutral) |
| MaRI (tau = ${fmtFixed(n.tau, 4)}) | ${fmtInterval(n.mari)} | RI with neighbours weighted by exp(-d / tau) |
| support | ${fmtFixed(n.support)} | share of samples with a typed neighbour among their first k |
| CRoMa median (m = ${n.m}) | ${fmtInterval(n.croma.median)} | per-sample margin (d_OS - d_SO) / (d_OS + d_SO), > 0 biology closer |
| CRoMa LTM10 | ${fmtInterval(n.croma.ltm10)} | mean of the worst 10% of margins |
| CRoMa F(0) | ${fmtInterval(n.croma.f0)} | share of samples at or below 0 (confounder-dominant) |
| ${r.confounder} decodability | ${fmtInterval(r.decodability.balancedAccuracy)} | balanced accuracy of a linear probe naming the ${r.confounder}, ${r.decodability.folds}-fold grouped CV (chance ${fmtFixed(r.decodability.chance)}) |
${sweep ? `| APD | ${fmtFixed(sweep.apd)} | mean relative accuracy change of a biology probe trained on confounded splits (0 none, -1 collapse) |\n| nIPD | ${fmtFixed(sweep.nipd)} | area of the chance-normalised degradation over Cramér's V (0 none, -0.5 linear fall to chance) |` : `| APD, nIPD | n/a | ${'skipped' in r.sweep ? r.sweep.skipped : ''} |`}

k chosen by biological kNN balanced accuracy: ${n.kSelection.map((s) => `k=${s.k}: ${fmtFixed(s.balancedAccuracy)}`).join(', ')}.${n.croma.undefined ? ` ${n.croma.undefined} samples have fewer than m neighbours of a type and no CRoMa.` : ''}
${
  sweep
    ? `
Probe sweep (${sweep.confounderValues.join(' vs ')}, classes ${sweep.classes.join(', ')}; ${sweep.testSlidesPerCell} held-out slides per cell, smallest cell ${sweep.smallestCell} slides), balanced accuracy per split over ${sweep.accuracies[0].length} replicates:

| Cramér's V | mean | min | max |
|---|---|---|---|
${sweep.cramersV.map((v, s) => `| ${v.toFixed(3)} | ${fmtFixed(mean(sweep.accuracies[s]))} | ${fmtFixed(Math.min(...sweep.accuracies[s]))} | ${fmtFixed(Math.max(...sweep.accuracies[s]))} |`).join('\n')}
`
    : ''
}`;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Per-sample CRoMa as a histogram, one colour per confounder value, with 0 marked. */
export function cromaHistogramSpec(values: { croma: number; confounder: string }[], confounder: string): VegaLiteSpec {
  return {
    title: `CRoMa per sample (> 0: the biological match is nearer than the ${confounder} impostor)`,
    width: 520,
    height: 240,
    data: { values },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x: {
            field: 'croma',
            type: 'quantitative',
            bin: { extent: [-1, 1], step: 0.05 },
            title: 'CRoMa',
            axis: { format: '.1f', values: [-1, -0.5, 0, 0.5, 1] },
          },
          y: { aggregate: 'count', type: 'quantitative', title: 'samples', stack: true },
          color: { field: 'confounder', type: 'nominal', title: confounder },
        },
      },
      {
        mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
        data: { values: [{ x: 0 }] },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
    ],
  };
}

/** The probe sweep: balanced accuracy against Cramér's V (mean over replicates, min-max band, chance line). */
export function probeSweepSpec(sweep: { cramersV: number[]; accuracies: number[][]; chance: number }): VegaLiteSpec {
  const rows = sweep.cramersV.map((v, s) => ({
    v,
    mean: mean(sweep.accuracies[s]),
    lo: Math.min(...sweep.accuracies[s]),
    hi: Math.max(...sweep.accuracies[s]),
  }));
  return {
    title: 'Biology probe trained on increasingly confounded splits',
    width: 420,
    height: 240,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'area', opacity: 0.25 },
        encoding: {
          x: { field: 'v', type: 'quantitative', title: "Cramér's V (training)" },
          y: { field: 'lo', type: 'quantitative', title: 'balanced accuracy (held out)', scale: { domain: [0, 1] } },
          y2: { field: 'hi' },
        },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { x: { field: 'v', type: 'quantitative' }, y: { field: 'mean', type: 'quantitative' } },
      },
      {
        mark: { type: 'rule', strokeDash: [4, 3], color: 'grey' },
        data: { values: [{ chance: sweep.chance }] },
        encoding: { y: { field: 'chance', type: 'quantitative' } },
      },
    ],
  };
}
