/**
 * A strict reader of the Prometheus text exposition format 0.0.4, written from the format's
 * description (not from our writer), for tests: it throws on anything a Prometheus server would
 * refuse or misread — bad names, bad escapes, a TYPE after samples, duplicate series, histogram
 * buckets that are not cumulative or whose +Inf bucket differs from _count.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', samples: [] }));
    return f;
  };
  text.split('\n').forEach((line, index) => {
    const where = `line ${index + 1}: ${line}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line);
      if (!m) return; // other comments are allowed
      const [, kind, name, rest] = m;
      if (!NAME.test(name!) || NAME.exec(name!)![0] !== name) throw new Error(`bad metric name in ${where}`);
      const f = family(name!);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`second HELP in ${where}`);
        if (/\\[^\\n]/.test(rest!.replace(/\\\\/g, ''))) throw new Error(`bad escape in HELP, ${where}`);
        f.help = rest!.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (f.samples.length > 0) throw new Error(`TYPE after samples in ${where}`);
        if (f.type !== 'untyped') throw new Error(`second TYPE in ${where}`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest!)) throw new Error(`unknown type in ${where}`);
        f.type = rest as Family['type'];
      }
      return;
    }
    const sample = parseSample(line, where);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`duplicate series in ${where}`);
    seenSeries.add(key);
    const base = [...families.keys()].find((n) => {
      const t = families.get(n)!.type;
      return t === 'histogram' ? [`${n}_bucket`, `${n}_sum`, `${n}_count`].includes(sample.name) : n === sample.name;
    });
    const f = family(base ?? sample.name);
    if (f.type === 'counter' && !(sample.value >= 0)) throw new Error(`negative counter in ${where}`);
    if (f.type === 'histogram' && sample.name.endsWith('_bucket') && sample.labels.le === undefined) throw new Error(`bucket without le in ${where}`);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) throw new Error(`bad sample name in ${where}`);
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const l = LABEL.exec(line.slice(pos));
      if (!l) throw new Error(`bad label name in ${where}`);
      pos += l[0].length;
      if (line[pos] !== '=' || line[pos + 1] !== '"') throw new Error(`expected ="…" in ${where}`);
      pos += 2;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) throw new Error(`unterminated label value in ${where}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos + 1];
          if (e === '\\') value += '\\';
          else if (e === '"') value += '"';
          else if (e === 'n') value += '\n';
          else throw new Error(`bad escape in label value, ${where}`);
          pos += 2;
        } else {
          value += c;
          pos++;
        }
      }
      pos++;
      if (l[0] in labels) throw new Error(`repeated label ${l[0]} in ${where}`);
      labels[l[0]] = value;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new Error(`expected , or } in ${where}`);
    }
    pos++;
  }
  const rest = line.slice(pos);
  const m = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  if (!m) throw new Error(`expected " value [timestamp]" in ${where}`);
  const v = m[1]!;
  const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : v === 'NaN' ? NaN : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) ? Number(v) : undefined;
  if (value === undefined) throw new Error(`bad value in ${where}`);
  return { name, labels, value };
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
    const count = samples.find((s) => s.name === `${f.name}_count`);
    const sum = samples.find((s) => s.name === `${f.name}_sum`);
    if (!count || !sum) throw new Error(`histogram ${f.name} series without _count or _sum`);
    const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
    if (les.some((x, i) => Number.isNaN(x) || (i > 0 && x <= les[i - 1]!))) throw new Error(`histogram ${f.name}: le values not increasing`);
    if (les.at(-1) !== Infinity) throw new Error(`histogram ${f.name}: no +Inf bucket`);
    if (buckets.some((b, i) => i > 0 && b.value < buckets[i - 1]!.value)) throw new Error(`histogram ${f.name}: buckets not cumulative`);
    if (buckets.at(-1)!.value !== count.value) throw new Error(`histogram ${f.name}: +Inf bucket ${buckets.at(-1)!.value} != _count ${count.value}`);
  }
}

/** The value of one series (labels must match exactly), or undefined. */
export function valueOf(families: Map<string, Family>, family: string, sampleName: string, labels: Record<string, string>): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return families.get(family)?.samples.find((s) => s.name === sampleName && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}
