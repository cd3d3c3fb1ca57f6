// Executes a notebook's TypeScript code cells in order, headless (the tests run every notebook this way):
//   node bin/run-ts.mjs notebooks/run-notebook.ts notebooks/explore-dataset.ipynb
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const path = process.argv[2];
if (!path) {
  console.error('usage: run-notebook.ts NOTEBOOK.ipynb');
  process.exit(2);
}
const nb = JSON.parse(readFileSync(path, 'utf8')) as { cells: { cell_type: string; source: string | string[] }[] };
const code = nb.cells
  .filter((c) => c.cell_type === 'code')
  .map((c, i) => `// --- cell ${i + 1}\n${Array.isArray(c.source) ? c.source.join('') : c.source}`)
  .join('\n\n');
// Beside the notebook, so its relative imports resolve the same way as in Jupyter.
const file = join(dirname(path), `.run-${basename(path, '.ipynb')}-${process.pid}.ts`);
writeFileSync(file, `${code}\nexport {};\n`);
try {
  await import(pathToFileURL(file).href);
} finally {
  rmSync(file, { force: true });
}
