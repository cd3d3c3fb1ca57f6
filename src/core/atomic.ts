import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync, statSync } from 'node:fs';
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
 * An empty temp file beside `path`, removed if the process stops before `release()`. It is created here,
 * synchronously: an asynchronous create still in the thread pool when Ctrl-C's cleanup runs would make
 * the file after its removal. Writers open it with 'r+' (a flag that never creates), so a write racing
 * the cleanup fails instead of bringing the file back. Synchronous writers need no guard (no signal is
 * handled while they run); every asynchronous one does.
 */
export function guardedTempPath(path: string): { tmp: string; release: () => void } {
  const tmp = tempPathFor(path);
  const release = tempFileGuard(tmp);
  try {
    closeSync(openSync(tmp, 'wx'));
  } catch (err) {
    release();
    throw err;
  }
  return { tmp, release };
}

/**
 * Writes a file so that readers see either the old content or the whole new content, never a partial
 * one: write to a temp name in the same folder, then rename.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const { tmp, release: done } = guardedTempPath(path);
  try {
    await writeFile(tmp, data, { flag: 'r+' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    // The user knows the file by its name, not by the temporary one it was written under.
    if ((err as NodeJS.ErrnoException)?.path === tmp) delete (err as NodeJS.ErrnoException).path;
    nameFileOnError(path)(err);
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

/**
 * Names the file an operating-system error was about where the call did not (a write on an open file
 * handle carries no path): a full disk then reads "cannot write DIR/shards/p0001.bin: no space left on
 * the device". Rethrows the error.
 */
export function nameFileOnError(path: string): (err: unknown) => never {
  return (err) => {
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && e.code && !e.path) e.path = path;
    throw err;
  };
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
