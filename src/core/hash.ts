import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from './errors.ts';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  if (statSync(path).isDirectory()) throw new InputError(`${path} is a folder, not a file`);
  await new Promise<void>((res, rej) =>
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => res())
      .on('error', rej),
  );
  return h.digest('hex');
}

export function sha256Text(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** gradelab's own version (package.json), recorded in every model file and run. */
export const GRADELAB_VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
