import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** A file as [[path, name]], or every file of a folder with its path under `name`, in a stable order. */
export function filesUnder(path: string, name: string): [string, string][] {
  if (!statSync(path).isDirectory()) return [[path, name]];
  return readdirSync(path)
    .sort()
    .flatMap((e) => filesUnder(join(path, e), `${name}/${e}`));
}
