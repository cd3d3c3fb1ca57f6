import { benchAugment } from './augment.ts';
import { benchCohort } from './cohort.ts';
import { benchInference } from './inference.ts';
import { benchKnn } from './knn.ts';
import { benchLoader } from './loader.ts';
import { benchRegions } from './regions.ts';
import { benchRobustness } from './robustness.ts';
import { benchStartup } from './startup.ts';
import { benchStores } from './stores.ts';
import { benchSynth } from './synth.ts';
import { benchTrain } from './train.ts';
import { benchTiling } from './tiling.ts';

/** npm run bench [-- regions|tiling|loader ...]: prints throughput and memory figures. */
const all: Record<string, () => Promise<void>> = {
  startup: benchStartup,
  cohort: benchCohort,
  stores: benchStores,
  regions: benchRegions,
  augment: benchAugment,
  loader: benchLoader,
  synth: benchSynth,
  train: benchTrain,
  inference: benchInference,
  knn: benchKnn,
  robustness: benchRobustness,
  tiling: () => benchTiling(),
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(all)) {
  const fn = all[name];
  if (!fn) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  await fn();
}
