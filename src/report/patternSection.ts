import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readPatternsFile, type PatternsFile } from '../eval/index.ts';
import { section, type ReportSection } from './document.ts';
import { est } from './evidence.ts';
import type { ReportInputs } from './inputs.ts';

/**
 * A pattern model's section: how it grades (patterns from label masks, the grade from their areas by
 * the ISUP rules, the thresholds chosen on validation) and how its pattern maps agree with the masks
 * of the evaluation set. Undefined for the other heads.
 */
export function patternSection(inp: ReportInputs): ReportSection | undefined {
  const g = inp.meta.patternGrading;
  if (inp.meta.head !== 'patterns' || !g) return undefined;
  const s = section('patterns', 'Gleason patterns');
  s.text.push(
    "The model gives every tile a Gleason pattern (benign, 3, 4 or 5), learned from the training slides' label masks; a slide's Gleason score and grade group come from its pattern areas (the mean of its tiles' pattern probabilities) by the ISUP 2014 rules for biopsies: the most extensive pattern is primary, a higher pattern is secondary in any amount, a lower one only from the share below.",
  );
  const c = g.chosenOn;
  s.facts.push(
    ['Cancer called from', `${pct(g.rule.minCancerShare)} of the tissue`],
    ['A pattern counts from', `${pct(g.rule.minPatternShare)} of the cancer`],
    ['A lower pattern is secondary from', `${pct(g.rule.lowerSecondaryShare)} of the cancer`],
    ['Softness of the grade probabilities', g.softness.toFixed(3)],
    [
      'Chosen on',
      c.slides
        ? `${c.slides} ${c.split} slides of fold ${c.fold} (QWK ${c.qwk?.toFixed(3) ?? 'n/a'}, log-loss ${c.logLoss?.toFixed(3) ?? 'n/a'})`
        : 'the pathology rule (no labelled validation slide)',
    ],
  );
  const file = inp.evalDir && join(inp.evalDir, 'patterns.json');
  if (!file || !existsSync(file)) {
    s.missing.push('pattern agreement with masks (`gradelab eval` on a dataset tiled with --mask-scheme writes patterns.json)');
    return s;
  }
  agreementTables(s, readPatternsFile(inp.evalDir!));
  return s;
}

const pct = (v: number) => `${+(100 * v).toPrecision(3)}%`;

function agreementTables(s: ReportSection, a: PatternsFile): void {
  s.text.push(
    `Against the masks of the evaluation set: ${a.tiles} tiles on ${a.slides} slides of ${a.patients} patients; intervals by patient bootstrap. A tile's pattern by its mask is its cancer's most extensive pattern when cancer is at least a tenth of its tissue.`,
  );
  s.tables.push(
    {
      caption: 'Tiles against the masks',
      header: ['metric', 'value (95% CI)'],
      rows: [
        ['tile accuracy', est(a.accuracy)],
        ['quadratic-weighted kappa (benign < 3 < 4 < 5)', est(a.kappa)],
      ],
    },
    {
      caption: 'By pattern',
      header: ['pattern', 'tiles', 'sensitivity', 'Dice (tiles)', 'slide area error'],
      rows: a.classes.map((c) => [c.name, String(c.support), est(c.sensitivity), est(c.dice), est(c.areaError)]),
    },
    {
      caption: 'Tiles by mask pattern (rows) and model pattern (columns)',
      header: ['', ...a.classes.map((c) => c.name)],
      rows: a.confusion.map((row, r) => [a.classes[r].name, ...row.map(String)]),
    },
  );
}
