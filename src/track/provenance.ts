import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GRADELAB_VERSION } from '../core/index.ts';
import { osUser } from './metaYaml.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function git(args: string[], cwd: string): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
}

function packageVersion(name: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/**
 * The provenance tags every run carries: code (git commit, dirty flag), software (gradelab, Node and
 * key package versions), host and process; the caller adds config, dataset, weights, backend and seed.
 */
export function provenanceTags(cwd = process.cwd()): Record<string, string> {
  const tags: Record<string, string> = {};
  const repo = git(['rev-parse', '--show-toplevel'], cwd) ?? git(['rev-parse', '--show-toplevel'], ROOT);
  if (repo) {
    const commit = git(['rev-parse', 'HEAD'], repo);
    if (commit) tags['mlflow.source.git.commit'] = commit;
    const status = git(['status', '--porcelain', '--untracked-files=no'], repo);
    if (status !== undefined) tags['gradelab.git.dirty'] = status === '' ? 'false' : 'true';
    const branch = git(['rev-parse', '--abbrev-ref', 'HEAD'], repo);
    if (branch) tags['mlflow.source.git.branch'] = branch;
  }
  tags['gradelab.version'] = GRADELAB_VERSION;
  tags['gradelab.node'] = process.version;
  for (const dep of [
    'sharp',
    'geotiff',
    '@tensorflow/tfjs-core',
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-node',
    '@tensorflow/tfjs-node-gpu',
  ]) {
    const v = packageVersion(dep);
    if (v) tags[`gradelab.pkg.${dep.replace(/^@/, '').replace(/\//g, '.')}`] = v;
  }
  tags['gradelab.host'] = hostname();
  tags['gradelab.pid'] = String(process.pid);
  tags['mlflow.user'] = osUser();
  tags['mlflow.source.name'] = process.argv[1]
    ? process.argv
        .slice(1, 3)
        .join(' ')
        .replace(/^.*[\\/]/, '')
    : 'gradelab';
  tags['mlflow.source.type'] = 'LOCAL';
  return tags;
}
