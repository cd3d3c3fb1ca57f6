import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError, tempPathFor } from '../core/index.ts';

// How MLflow's file store encodes things on disk: Python's float text and PyYAML's meta.yaml.

/** Python's str(float), as MLflow's file store writes metric values. */
export function pyFloat(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mant, expText] = v.toExponential().split('e');
  const e = Number(expText);
  if (e < -4 || e >= 16) return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const s = v.toString();
  return s.includes('.') ? s : `${s}.0`;
}

/** A value as Python's float() reads pyFloat's output ('nan', 'inf', '-inf' included). */
export function parsePyFloat(v: string): number {
  const t = v.toLowerCase();
  if (t === 'nan' || t === '-nan') return NaN;
  if (t === 'inf' || t === '+inf' || t === 'infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  return Number(v);
}

/** A YAML scalar as PyYAML's safe_dump writes it (MLflow's meta.yaml). */
function yamlScalar(v: string | number | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return String(v);
  if (v === '') return "''";
  const ambiguous = /^(?:[-+]?(?:\d[\d_]*)?\.?\d+(?:[eE][-+]?\d+)?|[-+]?\.inf|\.nan|true|false|yes|no|on|off|null|~|y|n)$/i.test(v);
  const special = /^[-?:,[\]{}#&*!|>'"%@`\s]|[\n\r\t]|: |\s#|\s$/.test(v);
  return ambiguous || special ? `'${v.replace(/'/g, "''")}'` : v;
}

export function writeYaml(path: string, obj: Record<string, string | number | null | []>): void {
  const lines = Object.keys(obj)
    .sort()
    .map((k) => `${k}: ${Array.isArray(obj[k]) ? '[]' : yamlScalar(obj[k] as string | number | null)}`);
  writeAtomicSync(path, `${lines.join('\n')}\n`);
}

/**
 * A meta.yaml as MLflow's PyYAML reads it (YAML 1.1; long values folded over several lines, quoted or
 * not), with every value as a string: integers as BigInt first, so 19-digit ids keep every digit.
 */
export function readYaml(path: string): Record<string, string> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'), { version: '1.1', intAsBigInt: true });
  } catch (err) {
    throw new InputError(`${path}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new InputError(`${path}: not an MLflow meta.yaml (expected a mapping)`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc))
    out[k] = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return out;
}

/** The OS user, as MLflow's client records it (getpass.getuser). */
export function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

export function writeAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
