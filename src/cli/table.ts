// Plain-text tables for the CLI.

export function printTable(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[], out = process.stdout): void {
  const used = columns.filter((c) => rows.some((r) => r[c] !== undefined && r[c] !== null && r[c] !== ''));
  const cell = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const widths = used.map((c) => Math.min(80, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  out.write(`${line(used)}\n`);
  for (const r of rows) out.write(`${line(used.map((c) => cell(r[c])))}\n`);
}
