import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { InputError } from './errors.ts';
import { tempFileGuard } from './interrupt.ts';

/** The longest file name (bytes) of the common Linux, macOS and Windows file systems. */
export const MAX_NAME_BYTES = 255;

/**
 * A temp name beside `path` (same filesystem, so rename is atomic). The name's own part is shortened
 * where needed so the temp name stays within MAX_NAME_BYTES: a file whose name is already near the
 * limit (an MLflow key of 250 characters) must still be writable.
 */
export function tempPathFor(path: string): string {
  const suffix = `.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const chars = [...basename(path)];
  const room = MAX_NAME_BYTES - 1 - Buffer.byteLength(suffix);
  while (Buffer.byteLength(chars.join('')) > room) chars.pop();
  return join(dirname(path), `.${chars.join('')}${suffix}`);
}

/**
 * Writes a file so that readers see either the old content or the whole new content, never a partial
 * one: write to a temp name in the same folder, then rename.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const done = tempFileGuard(tmp);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    done();
  }
}

/**
 * Refuses, before any work, an output path that cannot be written: the path (or, where it does not exist
 * yet, its nearest existing ancestor) must be writable, and no ancestor may be a file. Creates nothing.
 */
export function checkWritable(path: string, what = 'output'): void {
  let p = resolve(path);
  for (;;) {
    if (existsSync(p)) {
      const st = statSync(p);
      if (p !== resolve(path) && !st.isDirectory()) throw new InputError(`cannot write ${what} ${path}: ${p} is a file, not a folder`);
      try {
        accessSync(p, constants.W_OK);
      } catch {
        throw new InputError(`cannot write ${what} ${path}: ${p} is not writable (${readOnlyReason(p)})`);
      }
      return;
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}

function readOnlyReason(p: string): string {
  try {
    accessSync(p, constants.R_OK);
    return 'permission denied or a read-only file system';
  } catch {
    return 'permission denied';
  }
}

/** An operating-system error a user can fix (no permission, read-only or full disk), as one line; undefined otherwise. */
export function userFacingOsError(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
  };
  if (!e || typeof e !== 'object' || !e.code || !why[e.code]) return undefined;
  return `cannot write${e.path ? ` ${e.path}` : ''}: ${why[e.code]}`;
}
