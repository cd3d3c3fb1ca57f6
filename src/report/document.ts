import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../core/index.ts';

/** What people write for the report; everything else is measured. */
export const intendedUseSchema = z
  .object({
    intendedUse: z.string().optional(),
    users: z.string().optional(),
    workflowPosition: z.string().optional(),
    outOfScope: z.array(z.string()).optional(),
    referenceStandard: z.string().optional(),
    inclusionRules: z.string().optional(),
    limitations: z.array(z.string()).optional(),
  })
  .strict();

export type IntendedUse = z.infer<typeof intendedUseSchema>;

export function loadIntendedUse(path: string | undefined): IntendedUse {
  if (!path) return {};
  return loadYamlFile(path, intendedUseSchema, 'intended-use file').value;
}

export const MISSING = 'MISSING';

/** A value the report could not find: said as missing, with what would provide it. */
export function missing(what: string, how: string): { missing: true; what: string; how: string } {
  return { missing: true, what, how };
}

export interface ReportChart {
  title: string;
  section: string;
  /** Absolute path of a PNG to embed. */
  png: string;
}

export interface ReportSection {
  id: string;
  title: string;
  /** Paragraphs (plain text; escaped when rendered). */
  text: string[];
  /** Key-value facts. */
  facts: [string, string][];
  /** links: per row, where its last cell points (a relative URL), or undefined. */
  tables: { caption: string; header: string[]; rows: string[][]; links?: (string | undefined)[] }[];
  charts: ReportChart[];
  /** Things the report could not fill in. */
  missing: string[];
}

export function section(id: string, title: string): ReportSection {
  return { id, title, text: [], facts: [], tables: [], charts: [], missing: [] };
}

export function chartIf(s: ReportSection, title: string, dir: string | undefined, file: string): void {
  if (dir && existsSync(join(dir, file))) s.charts.push({ title, section: s.id, png: join(dir, file) });
}
