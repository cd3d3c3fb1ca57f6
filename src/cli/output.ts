/** stdout for results (tables, JSON); progress and logs go to stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: (string | number)[][], header?: string[]): void {
  const all = header ? [header, ...rows] : rows;
  const widths = all[0].map((_, c) => Math.max(...all.map((r) => String(r[c] ?? '').length)));
  const line = (r: (string | number)[]) =>
    r
      .map((v, c) => String(v ?? '').padEnd(widths[c]))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (header) {
    out.push(line(header));
    out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  for (const r of rows) out.push(line(r));
  process.stdout.write(`${out.join('\n')}\n`);
}
