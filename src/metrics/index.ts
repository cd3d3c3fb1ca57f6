// Pure grading metrics and the one slide-pooling rule: below train (which validates with them) and eval
// (which reports them with intervals). Imports core only.
export * from './metrics.ts';
export * from './pooling.ts';
export * from './predictionRow.ts';
export * from './temperature.ts';
