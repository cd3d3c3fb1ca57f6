export * from './metrics.ts';
export * from './bootstrap.ts';
export * from './agreement.ts';
export * from './referral.ts';
export * from './predictions.ts';
export * from './evaluate.ts';
export * from './charts.ts';
export * from './metricsFiles.ts';
