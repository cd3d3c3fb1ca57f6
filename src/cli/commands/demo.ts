import type { Argv } from 'yargs';

export const DEMO_PLAN = `gradelab demo will run the whole workflow on built-in synthetic slides:
  1. synthesise prostate slides from several sites and scanners (with rare anomalies)
  2. tile them at 0.5 um/px and split patients into folds
  3. train a grading network with stain augmentation, and a baseline without
  4. fit an out-of-distribution detector
  5. evaluate with patient-bootstrap confidence intervals
  6. run the robustness suites and audit an unseen site
  7. write the report (HTML, PDF, JSON) and print where each output is

Not available yet: the synthetic slide generator, training, OOD, robustness and report stages are still
being built (issues 3-10). What works today: gradelab slide info|region, tile, split, dataset info.`;

export function demoCommand(y: Argv): Argv {
  return y.command(
    'demo',
    'Run the end-to-end workflow on synthetic slides (not yet available: prints the plan)',
    (c) => c.option('quick', { type: 'boolean', default: false }).option('out', { type: 'string', default: 'gradelab-demo' }),
    async () => {
      process.stdout.write(`${DEMO_PLAN}\n`);
      process.exitCode = 1;
    },
  );
}
