import { posix } from 'node:path';
import { ConfigError } from '../core/index.ts';

/**
 * MLflow's validation rules (mlflow/utils/validation.py), applied at log time so a key MLflow would
 * reject fails here, with a clear message, not later when a journal is replayed to a server.
 */
export const MLFLOW_LIMITS = {
  maxKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 5000,
  maxExperimentNameLength: 500,
  maxMetricsPerBatch: 1000,
  maxParamsTagsPerBatch: 100,
  maxEntitiesPerBatch: 1000,
  maxBatchRequestBytes: 1_000_000,
} as const;

/** Python's `\w` is Unicode-aware: letters, digits, underscore; plus slash, period, dash, space. */
const VALID_NAME = /^[/\p{L}\p{N}_.\- ]*$/u;

/** MLflow's path_not_unique: the name must be its own normalised path, not ".", "..", or absolute. */
function pathNotUnique(name: string): boolean {
  const norm = posix.normalize(name);
  // Python's normpath drops trailing slashes; Node keeps them.
  const py = norm.length > 1 && norm.endsWith('/') ? norm.slice(0, -1) : norm;
  return py !== name || py === '.' || py.startsWith('..') || py.startsWith('/');
}

export function validateKey(kind: 'metric' | 'param' | 'tag', name: unknown): string {
  if (typeof name !== 'string') throw new ConfigError(`${kind} name must be a string, got ${JSON.stringify(name)}`);
  if (!VALID_NAME.test(name)) {
    throw new ConfigError(
      `invalid ${kind} name '${name}': names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ) and slashes (/)`,
    );
  }
  if (pathNotUnique(name)) {
    throw new ConfigError(
      `invalid ${kind} name '${name}': names are used as file paths and must not resolve to another name (this one resolves to '${posix.normalize(name) || '.'}')`,
    );
  }
  if (name.length > MLFLOW_LIMITS.maxKeyLength)
    throw new ConfigError(
      `${kind} name '${name.slice(0, 60)}...' is ${name.length} characters, over MLflow's limit of ${MLFLOW_LIMITS.maxKeyLength}`,
    );
  return name;
}

export function validateParamValue(key: string, value: string): string {
  if (value.length > MLFLOW_LIMITS.maxParamValueLength)
    throw new ConfigError(
      `param '${key}' value is ${value.length} characters, over MLflow's limit of ${MLFLOW_LIMITS.maxParamValueLength}`,
    );
  return value;
}

export function validateTagValue(key: string, value: string): string {
  if (value.length > MLFLOW_LIMITS.maxTagValueLength)
    throw new ConfigError(`tag '${key}' value is ${value.length} characters, over MLflow's limit of ${MLFLOW_LIMITS.maxTagValueLength}`);
  return value;
}

export function validateMetric(key: string, value: unknown, timestamp: number, step: number): number {
  validateKey('metric', key);
  if (typeof value !== 'number') throw new ConfigError(`metric '${key}' value must be a number, got ${JSON.stringify(value)}`);
  if (!Number.isInteger(timestamp) || timestamp < 0)
    throw new ConfigError(`metric '${key}' timestamp must be a non-negative integer (ms), got ${timestamp}`);
  if (!Number.isInteger(step)) throw new ConfigError(`metric '${key}' step must be an integer, got ${step}`);
  return value;
}

export function validateExperimentName(name: string): string {
  if (!name) throw new ConfigError('experiment name must not be empty');
  if (name.length > MLFLOW_LIMITS.maxExperimentNameLength)
    throw new ConfigError(`experiment name is over MLflow's limit of ${MLFLOW_LIMITS.maxExperimentNameLength} characters`);
  return name;
}

/** Artifact paths stay inside the run's artifact folder: relative, no "..", no absolute parts. */
export function validateArtifactPath(path: string): string {
  if (path === '') return path;
  const norm = posix.normalize(path.replace(/\\/g, '/'));
  if (norm.startsWith('/') || norm === '..' || norm.startsWith('../') || /^[A-Za-z]:/.test(path) || path.includes('\0')) {
    throw new ConfigError(`artifact path '${path}' would escape the run's artifact folder`);
  }
  return norm === '.' ? '' : norm.replace(/\/$/, '');
}

/** Python's urllib.parse.unquote, repeated until stable, as MLflow decodes artifact paths. */
function unquoteRepeatedly(path: string): string {
  let url = path;
  for (let i = 0; i < 10; i++) {
    const decoded = url.replace(/(%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
    if (decoded === url) return url;
    url = decoded;
  }
  throw new ConfigError(`artifact path '${path}' does not decode to a stable path`);
}

/**
 * MLflow's validate_path_is_safe (mlflow/utils/uri.py), which its artifact server applies to every
 * upload and listing: after URL-decoding, no '#', no '..' part, not absolute (POSIX or Windows). Checked
 * when an artifact is logged, so a name MLflow would refuse never reaches a journal.
 */
export function validateArtifactName(path: string): string {
  const decoded = unquoteRepeatedly(path);
  const why = decoded.includes('#')
    ? "contains '#'"
    : decoded.split('/').includes('..')
      ? "has a '..' part"
      : decoded.startsWith('/') || /^[A-Za-z]:[\\/]/.test(decoded) || decoded.startsWith('\\\\')
        ? 'is absolute'
        : decoded.includes('\0')
          ? 'contains a NUL character'
          : undefined;
  if (why) throw new ConfigError(`artifact '${path}' ${why}: MLflow refuses such artifact paths (rename the file)`);
  return path;
}
