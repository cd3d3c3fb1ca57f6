export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

/** MLflow's integer codes, as the file store's meta.yaml holds them. */
export const RUN_STATUS_CODE: Record<RunStatus, number> = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 };

export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface RunSummary {
  runId: string;
  experimentId: string;
  experimentName: string;
  runName: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  params: Record<string, string>;
  tags: Record<string, string>;
  /** Latest value per metric key (highest step, then latest timestamp). */
  metrics: Record<string, number>;
  artifactUri: string;
  /** MLflow's soft delete: deleted runs are hidden unless asked for. */
  lifecycleStage: 'active' | 'deleted';
  userId: string;
}

/** What the tracker writes to: the local MLflow file store or an MLflow server. */
export interface TrackingStore {
  readonly kind: 'file' | 'rest';
  getOrCreateExperiment(name: string): Promise<string>;
  createRun(experimentId: string, runName: string, startTime: number, tags: Record<string, string>): Promise<string>;
  logBatch(runId: string, batch: { metrics?: Metric[]; params?: Record<string, string>; tags?: Record<string, string> }): Promise<void>;
  updateRun(runId: string, status: RunStatus, endTime: number | null): Promise<void>;
  logArtifact(runId: string, localPath: string, artifactPath: string): Promise<void>;
  /** Marks the run's final status synchronously (process exit hooks cannot await). */
  endRunSync?(runId: string, status: RunStatus, endTime: number): void;
}

/**
 * The experiment tracker of DESIGN.md: params, metrics with step and timestamp, tags, artifacts,
 * nested runs and a final status.
 */
export interface Tracker {
  readonly runId: string;
  readonly experimentId: string;
  logParams(params: Record<string, string | number | boolean>): Promise<void>;
  logMetrics(metrics: Record<string, number>, step?: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  logArtifact(path: string, artifactPath?: string): Promise<void>;
  /** A nested run (MLflow's mlflow.parentRunId tag), e.g. a robustness condition under its model. */
  startChild(runName: string, tags?: Record<string, string>): Promise<Tracker>;
  end(status?: RunStatus): Promise<void>;
}
