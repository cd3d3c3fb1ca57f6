import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

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
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
