#!/usr/bin/env node
// The build's second half: the files next to the TypeScript sources that the compiled modules read at
// run time (scanner profiles, the WebAssembly kernels) go to the same place under dist/.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const rel of ['augment/scanners', 'augment/wasm/kernels.wasm']) {
  const from = join(root, 'src', rel);
  const to = join(root, 'dist', rel);
  if (!existsSync(from)) throw new Error(`missing build asset ${from}`);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true });
}
