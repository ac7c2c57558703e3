/**
 * A small Prometheus registry: counters, gauges and histograms with labels, written in the text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Why not prom-client: the proxies need three metric types, labels and a text dump — about 150
 * lines — while prom-client brings its default process collectors, a cluster aggregator and a
 * dependency tree to every install. The format is small and stable, and the test checks our
 * output with an independent parser. Its errors are programming errors in a metric's definition or
 * use (InternalError).
 */
import { XrdError } from '../platform/errors.ts';

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Content-Type of `MetricsRegistry.text()` for an HTTP `/metrics` answer. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Prometheus' default buckets, in seconds: request durations from 5 ms to 10 s. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Pipeline stages take from tens of microseconds (a check) to the far side's seconds. */
export const STAGE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5] as const;
/** Message sizes in bytes, ×4 from 256 B to 16 MiB. */
export const SIZE_BUCKETS = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216] as const;

abstract class Metric<S> {
  protected readonly series = new Map<string, { labels: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new XrdError('InternalError', { reason: `invalid metric name ${name}` });
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || l === 'le' || l === 'quantile') throw new XrdError('InternalError', { reason: `invalid label name ${l} for ${name}` });
    }
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract initial(): S;
  protected abstract lines(name: string, labels: string, state: S): string[];

  protected stateFor(labels: Labels | undefined): S {
    const values = this.labelNames.map((n) => {
      const v = labels?.[n];
      if (v === undefined) throw new XrdError('InternalError', { reason: `metric ${this.name} needs label ${n}` });
      return v;
    });
    if (labels && Object.keys(labels).length !== this.labelNames.length) {
      throw new XrdError('InternalError', { reason: `metric ${this.name} takes labels ${this.labelNames.join(', ') || '(none)'}, got ${Object.keys(labels).join(', ')}` });
    }
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      s = { labels: values, state: this.initial() };
      this.series.set(key, s);
    }
    return s.state;
  }

  /** Forgets every series (for metrics that mirror a changing set, such as the signer's tokens). */
  reset(): void {
    this.series.clear();
  }

  render(): string {
    const out = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`];
    if (this.series.size === 0 && this.labelNames.length === 0) this.stateFor(undefined);
    for (const { labels, state } of this.series.values()) {
      out.push(...this.lines(this.name, this.labelNames.map((n, i) => `${n}="${escapeLabel(labels[i]!)}"`).join(','), state));
    }
    return out.join('\n');
  }
}

export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter';
  protected initial() {
    return { value: 0 };
  }
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new XrdError('InternalError', { reason: `counter ${this.name} can only go up (inc by ${by})` });
    this.stateFor(labels).value += by;
  }
  get(labels?: Labels): number {
    return this.stateFor(labels).value;
  }
  /**
   * For a counter another process keeps (the signer's): its current total. When that process
   * restarts the total drops, which Prometheus reads as a counter reset.
   */
  mirror(labels: Labels | undefined, total: number): void {
    if (!(total >= 0)) throw new XrdError('InternalError', { reason: `counter ${this.name} cannot be ${total}` });
    this.stateFor(labels).value = total;
  }
  protected lines(name: string, labels: string, state: { value: number }): string[] {
    return [`${name}${braces(labels)} ${formatValue(state.value)}`];
  }
}

export class Gauge extends Metric<{ value: number }> {
  readonly type = 'gauge';
  protected initial() {
    return { value: 0 };
  }
  set(labels: Labels | undefined, value: number): void {
    this.stateFor(labels).value = value;
  }
  inc(labels?: Labels, by = 1): void {
    this.stateFor(labels).value += by;
  }
  get(labels?: Labels): number {
    return this.stateFor(labels).value;
  }
  protected lines(name: string, labels: string, state: { value: number }): string[] {
    return [`${name}${braces(labels)} ${formatValue(state.value)}`];
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DURATION_BUCKETS) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new XrdError('InternalError', { reason: `histogram ${name} needs finite, increasing buckets` });
    }
    this.buckets = [...buckets];
  }
  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }
  observe(labels: Labels | undefined, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.stateFor(labels);
    // Per-bucket counts here; made cumulative when written.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  get(labels?: Labels): { count: number; sum: number } {
    const s = this.stateFor(labels);
    return { count: s.count, sum: s.sum };
  }
  /**
   * For a histogram another process keeps (the signer's): its cumulative counts per bucket of this
   * histogram (same bounds, +Inf left out), sum and count.
   */
  mirror(labels: Labels | undefined, snapshot: { counts: readonly number[]; sum: number; count: number }): void {
    if (snapshot.counts.length !== this.buckets.length) throw new XrdError('InternalError', { reason: `histogram ${this.name} has ${this.buckets.length} buckets, got ${snapshot.counts.length}` });
    const s = this.stateFor(labels);
    s.counts = snapshot.counts.map((c, i) => c - (i === 0 ? 0 : snapshot.counts[i - 1]!));
    s.sum = snapshot.sum;
    s.count = snapshot.count;
  }
  protected lines(name: string, labels: string, s: HistogramState): string[] {
    const sep = labels === '' ? '' : ',';
    const out: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += s.counts[i]!;
      out.push(`${name}_bucket{${labels}${sep}le="${formatValue(b)}"} ${cumulative}`);
    });
    out.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${s.count}`, `${name}_sum${braces(labels)} ${formatValue(s.sum)}`, `${name}_count${braces(labels)} ${s.count}`);
    return out;
  }
}

/** The metrics of one process, written for a scrape by `text()`. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.metrics.get(name);
  }

  /** The exposition text of every metric, in registration order. */
  text(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n';
  }

  private add<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new XrdError('InternalError', { reason: `metric ${metric.name} is already registered` });
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

function braces(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
