import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * DESIGN.md's import rules, checked on every source file: which folder may import which (statically or
 * lazily), no command importing another, TensorFlow.js only in train, ONNX Runtime only in engine.
 */
const SRC = resolve(import.meta.dirname, '../src');
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  metrics: ['core'],
  augment: ['core'],
  track: ['core'],
  onnx: ['core'],
  data: ['core'],
  synth: ['core', 'augment', 'data'],
  ood: ['core', 'augment'],
  engine: ['core', 'onnx'],
  train: ['core', 'data', 'augment', 'track', 'metrics', 'onnx'],
  eval: ['core', 'data', 'augment', 'ood', 'metrics', 'track'],
  view: ['core', 'data', 'eval', 'metrics'],
  report: ['core', 'data', 'eval', 'metrics', 'track', 'view'],
  workflows: ['core', 'data', 'synth', 'augment', 'track', 'metrics', 'onnx', 'engine', 'ood', 'train', 'eval', 'view', 'report'],
};
const ONLY_IN: Record<string, string> = { '@tensorflow/': 'train', 'onnxruntime-node': 'engine' };

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'";]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]);
}

const folderOf = (path: string) => relative(SRC, path).split('/')[0];

describe('source layout', () => {
  const files = sources(SRC);

  it('reads the import statements it checks (the parser finds known imports)', () => {
    expect(specifiers(join(SRC, 'workflows', 'openModel.ts'))).toEqual(['../engine/index.ts', '../train/index.ts']);
    expect(files.length).toBeGreaterThan(150);
  });

  it('every folder imports only the folders DESIGN.md allows', () => {
    const broken: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const allowed = MAY_IMPORT[from];
      if (!allowed) continue; // cli/ and the public index compose everything
      for (const spec of specifiers(file).filter((s) => s.startsWith('.'))) {
        const to = folderOf(resolve(dirname(file), spec));
        if (to !== from && !allowed.includes(to)) broken.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('no command imports another command', () => {
    const commands = join(SRC, 'cli', 'commands');
    const broken = files
      .filter((f) => dirname(f) === commands)
      .flatMap((f) =>
        specifiers(f)
          .filter((s) => s.startsWith('./'))
          .map((s) => `${relative(SRC, f)} imports ${s}`),
      );
    expect(broken).toEqual([]);
  });

  it('TensorFlow.js is imported only in train, ONNX Runtime only in engine', () => {
    const broken = files.flatMap((f) =>
      specifiers(f)
        .filter((s) => Object.entries(ONLY_IN).some(([pkg, home]) => s.startsWith(pkg) && folderOf(f) !== home))
        .map((s) => `${relative(SRC, f)} imports ${s}`),
    );
    expect(broken).toEqual([]);
  });
});
