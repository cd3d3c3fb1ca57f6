import { join, relative, resolve, sep } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../core/index.ts';
import type { ColourStats, SiteAudit } from './audit.ts';
import { writeChart } from './charts.ts';
import { fmtEstimate } from './metricsFiles.ts';

/** Display colours of the two stains as a pathologist sees them: haematoxylin blue-purple, eosin pink. */
export const STAIN_COLOURS = { haematoxylin: '#4b3f91', eosin: '#e07aa6' } as const;

/** Where an audit's inputs were, relative to its output folder. */
export interface AuditSource {
  model: string;
  site: string;
  training: string;
}

/** audit.json, summary.md and the grade-distribution and stain charts of a site audit. */
export async function writeSiteAudit(out: string, audit: SiteAudit, source: AuditSource): Promise<void> {
  await mkdir(out, { recursive: true });
  const rel = (p: string) => relative(resolve(out), resolve(p)).split(sep).join('/') || '.';
  const stored = { source: { model: rel(source.model), site: rel(source.site), training: rel(source.training) }, ...audit };
  await writeFileAtomic(
    join(out, 'audit.json'),
    JSON.stringify(stored, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  const { colour, gradeDistribution: g } = audit;
  const sources: [string, ColourStats][] = [...Object.entries(colour.training), ['new site', colour.site]];
  const md = [
    `# Site audit: ${stored.source.site}`,
    '',
    `${audit.site.slides} slides (${audit.site.patients} patients, ${audit.site.tiles} tiles) against ${audit.reference.slides} training slides (${audit.reference.tiles} tiles sampled). Intervals are 95%, over the site's patients.`,
    '',
    '## Findings',
    '',
    ...audit.findings.map((f) => `- ${f}`),
    '',
    '## Stain statistics',
    '',
    '| source | tiles | H vector | E vector | mean OD H | mean OD E |',
    '|---|---|---|---|---|---|',
    ...sources.map(
      ([n, c]) =>
        `| ${n} | ${c.tiles} | ${c.hVector.map((v) => v.toFixed(3)).join(', ')} | ${c.eVector.map((v) => v.toFixed(3)).join(', ')} | ${c.meanH.toFixed(3)} | ${c.meanE.toFixed(3)} |`,
    ),
    '',
    `Angle to the training sites' pooled vectors: haematoxylin ${fmtEstimate(colour.angleDegrees.h, 1)} degrees, eosin ${fmtEstimate(colour.angleDegrees.e, 1)} degrees.`,
    '',
    '## Grade distribution',
    '',
    `| grade | ${g.classes.join(' | ')} |`,
    `|---|${g.classes.map(() => '---').join('|')}|`,
    `| training slides | ${g.training.map((v) => v.toFixed(2)).join(' | ')} |`,
    `| predicted at the site | ${g.predicted.map((v) => v.toFixed(2)).join(' | ')} |`,
    '',
    `Total variation ${fmtEstimate(g.totalVariation, 2)}.`,
    '',
  ];
  await writeFileAtomic(join(out, 'summary.md'), `${md.join('\n')}\n`);
  await writeChart(join(out, 'grade-distribution'), {
    title: 'Grade distribution: training slides vs predicted at the site',
    width: 320,
    height: 220,
    data: {
      values: g.classes.flatMap((grade, i) => [
        { grade: String(grade), source: 'training (labels)', share: g.training[i] },
        { grade: String(grade), source: 'site (predicted)', share: g.predicted[i] },
      ]),
    },
    mark: 'bar',
    encoding: {
      x: { field: 'grade', type: 'ordinal' },
      xOffset: { field: 'source' },
      y: { field: 'share', type: 'quantitative' },
      color: { field: 'source', type: 'nominal' },
    },
  });
  await writeChart(join(out, 'stain-od'), {
    title: 'Mean optical density per stain',
    width: 320,
    height: 220,
    data: {
      values: sources.flatMap(([n, c]) => [
        { source: n, stain: 'haematoxylin', od: c.meanH },
        { source: n, stain: 'eosin', od: c.meanE },
      ]),
    },
    mark: 'bar',
    encoding: {
      x: { field: 'source', type: 'nominal', axis: { labelAngle: 0 } },
      xOffset: { field: 'stain' },
      y: { field: 'od', type: 'quantitative', title: 'mean optical density' },
      color: {
        field: 'stain',
        type: 'nominal',
        scale: { domain: ['haematoxylin', 'eosin'], range: [STAIN_COLOURS.haematoxylin, STAIN_COLOURS.eosin] },
      },
    },
  });
}
