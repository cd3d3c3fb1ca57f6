import { existsSync } from 'node:fs';
import { InputError } from '../core/index.ts';

/** One HDF5 dataset read whole: its shape, values as a flat array, and its attributes. */
export interface H5Dataset {
  shape: number[];
  values: ArrayLike<number | bigint>;
  attrs: Record<string, unknown>;
}

type H5Module = typeof import('h5wasm/node');
let loading: Promise<H5Module['default']> | undefined;

/**
 * h5wasm (HDF5's C library compiled to WebAssembly), loaded on first use, with HDF5's error stack turned
 * into thrown errors: its default handler prints a dozen diagnostic lines to stderr for one bad file.
 */
async function h5(): Promise<H5Module['default']> {
  loading ??= (async () => {
    const mod = (await import('h5wasm/node')).default;
    const module = await mod.ready;
    module.activate_throwing_error_handler();
    return mod;
  })();
  return loading;
}

/** HDF5's error stack in one line: its innermost message. */
function hdf5Message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const messages = [...text.matchAll(/(?:error message = '([^']+)'|#\d+: [^\n]* in (\w+\(\)): ([^\n]+))/g)].map((m) => m[1] ?? m[3]);
  return (messages.pop() ?? text.split('\n').find((l) => l.trim()) ?? 'unreadable').trim();
}

const scalar = (v: unknown): unknown => (ArrayBuffer.isView(v) || Array.isArray(v) ? (v as ArrayLike<unknown>)[0] : v);

/**
 * Reads datasets of an HDF5 file by name (with their attributes); a file that is not HDF5, or lacks one
 * of them, is one line naming it and what is wrong.
 */
export async function readH5Datasets(path: string, names: readonly string[], what: string): Promise<Record<string, H5Dataset>> {
  if (!existsSync(path)) throw new InputError(`${path}: ${what} not found`);
  const lib = await h5();
  let file: InstanceType<H5Module['default']['File']>;
  try {
    file = new lib.File(path, 'r');
  } catch (err) {
    throw new InputError(`${path}: not a readable HDF5 file (${hdf5Message(err)})`);
  }
  try {
    const keys = file.keys();
    const out: Record<string, H5Dataset> = {};
    for (const name of names) {
      if (!keys.includes(name))
        throw new InputError(`${path}: no "${name}" dataset in this ${what} (it has: ${keys.join(', ') || 'nothing'})`);
      const ds = file.get(name) as InstanceType<H5Module['default']['Dataset']>;
      const attrs = Object.fromEntries(Object.entries(ds.attrs).map(([k, a]) => [k, scalar(a.value)]));
      out[name] = { shape: ds.shape ?? [], values: ds.value as ArrayLike<number | bigint>, attrs };
    }
    return out;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: cannot read the ${what} (${hdf5Message(err)})`);
  } finally {
    file.close();
  }
}
