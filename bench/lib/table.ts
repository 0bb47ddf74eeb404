// Shared benchmark helpers: quick mode, timing loops and one table format.

/** True under SIGNET_BENCH_QUICK=1 (CI): tiny workloads that only prove the benches run. */
export const QUICK = process.env.SIGNET_BENCH_QUICK === '1';

/** Runs `fn` repeatedly for about `ms` milliseconds (after one warm-up call); returns ops/s. */
export async function opsPerSecond(fn: () => unknown | Promise<unknown>, ms = QUICK ? 50 : 1000, batch = 1): Promise<number> {
  await fn();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    await fn();
    ops += batch;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (ops * 1000) / elapsed;
}

/** Prints rows as an aligned table under a title. Numbers are formatted to 3 significant digits. */
export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined): string =>
    typeof v === 'number' ? (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3)) : (v ?? '');
  const text = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(`\n${title}${QUICK ? ' (quick mode: numbers not meaningful)' : ''}`);
  console.log(line(columns));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const t of text) console.log(line(t));
}
