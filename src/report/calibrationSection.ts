import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelFile } from '../core/index.ts';
import { readCalibrationFile, type CalibrationFile, type EstimateJson } from '../eval/index.ts';
import { chartIf, section, type ReportSection } from './document.ts';
import type { ReportInputs } from './inputs.ts';

const est = (e: EstimateJson) =>
  e.value === null
    ? 'n/a'
    : e.ci95[0] === null
      ? `${e.value.toFixed(3)} (no interval)`
      : `${e.value.toFixed(3)} (${e.ci95[0].toFixed(3)}-${e.ci95[1]!.toFixed(3)})`;
const arrow = (a: number, b: number) => `${a.toFixed(3)} -> ${b.toFixed(3)}`;

function groupTable(caption: string, groups: CalibrationFile['bySite']) {
  return {
    caption,
    header: ['group (slides)', 'NLL', 'ECE equal width', 'ECE equal mass', 'classwise ECE'],
    rows: groups.map((g) => [
      `${g.group} (${g.slides})`,
      arrow(g.before.nll, g.after.nll),
      arrow(g.before.ece, g.after.ece),
      arrow(g.before.eceEqualMass, g.after.eceEqualMass),
      arrow(g.before.classwiseEce, g.after.classwiseEce),
    ]),
  };
}

/** How far the model's probabilities can be taken at face value: temperature scaling and what it changed. */
export function calibrationSection(inp: ReportInputs): ReportSection {
  const s = section('calibration', 'Calibration');
  const dir = modelFile(inp.modelDir, 'calibration');
  const t = inp.meta.calibration;
  if (!t || !existsSync(join(dir, 'calibration.json'))) {
    s.missing.push('calibration (`gradelab calibrate --model MODEL_DIR --data DATASET` fits it on validation slides)');
    return s;
  }
  const c = readCalibrationFile(dir);
  s.text.push(
    c.method === 'softness'
      ? `Calibration of a pattern model: its tile logits are left as they are (scaling them would move the pattern areas its rule was chosen on), and the softness of its rule's grade probabilities was multiplied by T = ${c.temperature.toFixed(3)}, fitted on ${c.slides} ${c.split} slides of ${c.patients} patients (fold ${c.fold}) by minimising the negative log-likelihood of the slide grades. ${c.temperature < 1 ? 'T < 1 sharpens: the slides were under-confident.' : 'T > 1 softens: the slides were over-confident.'} Every number in this report comes from the calibrated model.`
      : `Temperature scaling: every tile's logits are divided by T = ${c.temperature.toFixed(3)} before its probabilities, fitted on ${c.slides} ${c.split} slides of ${c.patients} patients (fold ${c.fold}) by minimising the negative log-likelihood of the slide grades. ${c.temperature < 1 ? 'T < 1 sharpens: the mean of tile probabilities left the slides under-confident.' : 'T > 1 softens: the slides were over-confident.'} Every number in this report comes from the calibrated model.`,
    `On those validation slides, top-label ECE (patient-bootstrap 95% CI): equal-width bins ${est(c.intervals.before.ece)} before, ${est(c.intervals.after.ece)} after; equal-mass bins ${est(c.intervals.before.eceEqualMass)} before, ${est(c.intervals.after.eceEqualMass)} after.`,
  );
  if (inp.metrics) s.text.push(`On the evaluation set (not used to fit T): ECE ${est(inp.metrics.ece)}, Brier ${est(inp.metrics.brier)}.`);
  s.tables.push(
    groupTable(`Before -> after, the ${c.split} slides T was fitted on`, [
      { group: 'all', slides: c.slides, before: c.before, after: c.after },
    ]),
    groupTable('Per site', c.bySite),
    groupTable('Per scanner', c.byScanner),
  );
  if (c.slides < 30)
    s.text.push(
      `Warning: ${c.slides} slides fit one parameter, but their ECE intervals are wide; the per-site and per-scanner rows are descriptive.`,
    );
  chartIf(
    s,
    `Reliability of slide grades before and after ${c.method === 'softness' ? 'calibration' : 'temperature scaling'}`,
    dir,
    'reliability.png',
  );
  return s;
}
