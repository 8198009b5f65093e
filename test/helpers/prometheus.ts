// Reads a Prometheus text exposition into samples the tests can look up by name and labels.

/** One sample line: `name{a="x",b="y"} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class Scrape {
  readonly samples: readonly Sample[];
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
      samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
    this.samples = samples;
  }

  /** Samples of `name` whose labels include `labels`. */
  all(name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The one sample of `name` with exactly these labels (histogram buckets aside), or 0 when absent. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number {
    const found = this.all(name, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
    return found[0]?.value ?? 0;
  }
}

/** GET /metrics from `base` (with a bearer token when given). */
export async function scrape(base: string, token?: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`);
  return new Scrape(text);
}
