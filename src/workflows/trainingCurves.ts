import { join } from 'node:path';
import { trainingCurvesSpec, writeChart } from '../eval/index.ts';

/** A validation QWK as logs print it: three decimals, or n/a where undefined. */
export const fmtQwk = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));

/** training-curves.svg/png of a model directory: train loss and validation QWK (slides, tiles) per epoch. */
export async function writeTrainingCurves(
  out: string,
  name: string,
  history: { epoch: number; trainLoss: number; valQwk: number | null; valTileQwk: number | null }[],
): Promise<void> {
  const points = (f: (h: (typeof history)[number]) => number | null) =>
    history.flatMap((h) => (f(h) === null ? [] : [{ step: h.epoch + 1, value: f(h)! }]));
  await writeChart(
    join(out, 'training-curves'),
    trainingCurvesSpec(
      {
        'train loss': points((h) => h.trainLoss),
        'val QWK (slides)': points((h) => h.valQwk),
        'val QWK (tiles)': points((h) => h.valTileQwk),
      },
      `Training curves: ${name}`,
    ),
  );
}
