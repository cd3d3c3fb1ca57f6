import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeFailure, selectBackend, tryTensorflow } from '../../src/train/backend.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
const installed = (pkg: string) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const noNative = !installed('@tensorflow/tfjs-node') && !installed('@tensorflow/tfjs-node-gpu');

describe('native backend', () => {
  it('tells a package that is absent from one that is installed but fails to load, with its own error', async () => {
    // What tfjs-node's binding throws when libtensorflow is missing or built for another CUDA.
    const broken = join(dir, 'tfjs-node-broken.mjs');
    writeFileSync(
      broken,
      "throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory\\n    at Module._extensions..node');\n",
    );
    const attempts = await tryTensorflow(['@tensorflow/tfjs-node-not-a-package', pathToFileURL(broken).href]);
    expect(attempts[0]).toMatchObject({ loaded: false, installed: false });
    expect(attempts[1]).toMatchObject({
      loaded: false,
      installed: true,
      error: 'libtensorflow.so.2: cannot open shared object file: No such file or directory',
    });
    expect(nativeFailure(attempts)).toBe(
      `${pathToFileURL(broken).href} is installed but fails to load: libtensorflow.so.2: cannot open shared object file: No such file or directory`,
    );
    expect(nativeFailure(attempts.slice(0, 1))).toMatch(/^neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed/);
  });

  it.skipIf(!noNative)('--backend tensorflow without a loadable package is a one-line configuration error', async () => {
    // Neither optional package installs on a machine without internet (they download libtensorflow).
    await expect(selectBackend('tensorflow')).rejects.toThrow(/^--backend tensorflow: neither .* is installed .*Use --backend wasm$/);
  });
});
