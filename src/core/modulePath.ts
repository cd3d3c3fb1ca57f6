import { fileURLToPath } from 'node:url';

/**
 * Where a sibling module is, for code that hands a module path to a worker thread: gradelab runs from
 * its compiled JavaScript (dist/, the installed package) or, in development and tests, from its
 * TypeScript source. `from` is the caller's import.meta.url; `relative` names the module with its .ts
 * extension, which becomes .js when the caller itself is compiled.
 */
export function siblingModule(from: string, relative: string): string {
  const compiled = !from.endsWith('.ts');
  return fileURLToPath(new URL(compiled ? relative.replace(/\.ts$/, '.js') : relative, from));
}

/**
 * A worker thread's entry script. Compiled, it is the worker module itself (`name.js`); from the
 * TypeScript source it is `name.mjs`, a development-only shim that lets Node start a worker on TypeScript
 * through tsx (a devDependency: installed gradelab never transpiles at run time).
 */
export function workerEntry(from: string, name: string): string {
  return fileURLToPath(new URL(from.endsWith('.ts') ? `./${name}.mjs` : `./${name}.js`, from));
}
