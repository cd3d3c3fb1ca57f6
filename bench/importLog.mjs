// node --import ./bench/importLog.mjs ...: appends every module URL the process resolves to the file named
// by GRADELAB_IMPORT_LOG, so a benchmark or test can say which packages a command loaded.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.GRADELAB_IMPORT_LOG) appendFileSync(process.env.GRADELAB_IMPORT_LOG, r.url + '\\n');
  return r;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
