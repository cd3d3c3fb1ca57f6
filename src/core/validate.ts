import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, InputError } from './errors.ts';

/** One line for a zod failure: the first issue, with its path ("train.epochs: expected number"). */
export function zodProblem(err: z.ZodError, noun = 'key'): string {
  const i = err.issues[0];
  const path = i.path.map(String).join('.');
  const detail =
    i.code === 'unrecognized_keys' ? `unknown ${noun}${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message;
  const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more)` : '';
  return `${path ? `${path}: ` : ''}${detail}${more}`;
}

function readText(path: string, what: string, errorClass: typeof InputError): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new errorClass(
      code === 'ENOENT' ? `${path}: ${what} not found` : `${path}: cannot read the ${what} (${code ?? (err as Error).message})`,
      { cause: err },
    );
  }
}

/** Parses YAML text; a ConfigError naming `where` and the first line of the parser's complaint otherwise. */
export function parseYamlText(text: string, where: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/** Parses YAML text and validates it; a ConfigError naming `where` and the key path otherwise. */
export function parseYamlWith<S extends z.ZodType>(text: string, schema: S, where: string): z.infer<S> {
  const raw = parseYamlText(text, where);
  const r = schema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(`${where}: ${zodProblem(r.error)}`, { cause: r.error });
  return r.data;
}

/** Reads a YAML file (experiment, suite, profile, report text) and validates it with its schema. */
export function loadYamlFile<S extends z.ZodType>(path: string, schema: S, what: string): { value: z.infer<S>; text: string } {
  const text = readText(path, what, ConfigError);
  return { value: parseYamlWith(text, schema, path), text };
}

/**
 * Reads a JSON file that gradelab wrote itself (gradelab.json, splits.json, detectors, mil.json) and
 * validates it: a file edited by hand, cut short or from another version is an InputError naming it.
 */
export function loadJsonFile<S extends z.ZodType>(path: string, schema: S, what: string): z.infer<S> {
  const text = readText(path, what, InputError);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${path}: ${what} is not valid JSON (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new InputError(`${path}: not a valid ${what}: ${zodProblem(r.error)}`, { cause: r.error });
  return r.data;
}
