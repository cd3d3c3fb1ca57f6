import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CACHE = fileURLToPath(new URL('./.cache/', import.meta.url));
mkdirSync(CACHE, { recursive: true });

export function cached(name: string): string {
  return join(CACHE, name);
}

export function hasPython(module: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function exists(path: string): boolean {
  return existsSync(path);
}

export function fmt(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function header(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}
