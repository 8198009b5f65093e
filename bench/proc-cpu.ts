// CPU time of benchmark processes from /proc (Linux): light enough for the load generator's child to import.
import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime of `pid` from /proc/PID/stat (clock ticks of 1/100 s on Linux). */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The direct children of `pid` (varnishd's manager: its cache process), read from /proc. */
export function childPids(pid: number | undefined): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // ppid is the second field after the command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** CPU seconds of `pid` and its direct children (varnishd's manager and its cache process). */
export function treeCpuSeconds(pid: number | undefined): number {
  let children: number[];
  try {
    children = childPids(pid);
  } catch {
    return Number.NaN;
  }
  return children.reduce((total, c) => total + processCpuSeconds(c), processCpuSeconds(pid));
}

/**
 * CPU seconds of `pid` from the scheduler's per-thread run time (/proc/PID/task/TID/schedstat, in ns):
 * far finer than the 10 ms ticks of /proc/PID/stat, for short windows. Threads that exited meanwhile
 * are not counted. NaN where schedstat is unavailable.
 */
export function threadsCpuSeconds(pid: number | undefined): number {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    return Number.NaN;
  }
  return ns / 1e9;
}
