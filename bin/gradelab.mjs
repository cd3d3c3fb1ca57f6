#!/usr/bin/env node
// The gradelab command: the compiled CLI in dist/ (npm ci builds it: the `prepare` script). Nothing is
// transpiled at run time; each command loads only its own modules.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/entry.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('gradelab: not built yet: run `npm run build` (npm ci does it)\n');
  process.exit(1);
}
const { run } = await import(entry.href);
process.exitCode = await run(process.argv.slice(2));
