/**
 * One error hierarchy for the whole project. `userError` subclasses are the user's mistake (bad file,
 * bad flag, bad config): the CLI prints their one-line message and exits 2. Anything else is ours: exit 1.
 */
export class GradelabError extends Error {
  readonly code: string;
  /** True when the user can fix it by changing their input (CLI exit code 2). */
  readonly userError: boolean;

  constructor(message: string, options: { code?: string; cause?: unknown; userError?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'GRADELAB_ERROR';
    this.userError = options.userError ?? false;
  }
}

/** Bad input a user can fix; the message names the file (and row) and the problem. */
export class InputError extends GradelabError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { code: options.code ?? 'INPUT_ERROR', cause: options.cause, userError: true });
  }
}

/** A slide file that cannot be read: bad magic, truncated, impossible sizes, unsupported compression. */
export class InvalidSlideError extends InputError {
  constructor(
    readonly path: string,
    problem: string,
    options: { code?: string; cause?: unknown } = {},
  ) {
    super(`${path}: ${problem}`, { code: options.code ?? 'INVALID_SLIDE', cause: options.cause });
  }
}

/** A slide in a format we recognise but cannot decode (JPEG 2000 SVS, exotic compressions). */
export class UnsupportedSlideError extends InvalidSlideError {
  constructor(path: string, problem: string, options: { cause?: unknown } = {}) {
    super(path, problem, { code: 'UNSUPPORTED_SLIDE', cause: options.cause });
  }
}

/** A configuration file or flag combination that is wrong. */
export class ConfigError extends InputError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'CONFIG_ERROR', cause: options.cause });
  }
}

/** A manifest (CSV) with a missing column, a bad value or a path that does not exist; names the row. */
export class ManifestError extends InputError {
  constructor(
    readonly path: string,
    readonly row: number | undefined,
    problem: string,
    options: { cause?: unknown } = {},
  ) {
    super(row === undefined ? `${path}: ${problem}` : `${path}, row ${row}: ${problem}`, { code: 'MANIFEST_ERROR', cause: options.cause });
  }
}

/** A tile dataset folder that is missing pieces or inconsistent. */
export class DatasetError extends InputError {
  constructor(
    readonly path: string,
    problem: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${path}: ${problem}`, { code: 'DATASET_ERROR', cause: options.cause });
  }
}

export function isUserError(err: unknown): err is GradelabError {
  return err instanceof GradelabError && err.userError;
}
