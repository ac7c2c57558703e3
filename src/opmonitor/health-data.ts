/**
 * Health data of the services this server provides, as the reference's operational monitoring
 * daemon keeps it for `getSecurityServerHealthData` (HealthDataMetrics, HealthDataRequestHandler):
 * computed over records in the Producer role only, per service — the response-out time of the last
 * successful and of the last unsuccessful request since startup, the service type, and over the
 * last statistics period (600 s by default) the successful and unsuccessful request counts and, of
 * the successful requests, the min/mean/max/sample standard deviation of the duration
 * (responseOutTs − requestInTs) and of the request and response sizes.
 *
 * The reference keeps every value of the period in a sliding-window reservoir; we keep one
 * aggregate per second (count, sum, sum of squares, min, max), which gives the same statistics to
 * within the second a value falls out of the window and bounds memory to `periodSeconds` buckets
 * a series whatever the message rate. Like the reference's metric registry it lives in memory and
 * starts empty with the process; unlike it, the number of services is capped (a caller can make up
 * service identifiers in failed requests), the least recently seen being forgotten first.
 */
import type { ClientId } from '../protocol/identifiers.ts';
import type { OpMonitoringRecord } from './record.ts';

/** A service as the health data names it (the reference's ServiceId.Conf). */
export interface HealthServiceId {
  readonly instance: string;
  readonly memberClass: string;
  readonly memberCode: string;
  readonly subsystem?: string;
  readonly serviceCode: string;
  readonly serviceVersion?: string;
}

export interface Statistics {
  readonly min: number;
  readonly mean: number;
  readonly max: number;
  /** Sample standard deviation (n − 1), 0 for one value: Dropwizard's UniformSnapshot. */
  readonly stdDev: number;
}

export interface ServiceHealth {
  readonly service: HealthServiceId;
  /** Unix ms (responseOutTs) of the last successful request since startup. */
  readonly lastSuccessfulRequestTimestamp?: number;
  readonly lastUnsuccessfulRequestTimestamp?: number;
  readonly serviceType?: string;
  readonly successfulRequestCount: number;
  readonly unsuccessfulRequestCount: number;
  /** Only when successfulRequestCount > 0, as the reference gives them. */
  readonly requestDuration?: Statistics;
  readonly requestSize?: Statistics;
  readonly responseSize?: Statistics;
}

export interface HealthReport {
  /** Unix ms when monitoring started (the store was opened). */
  readonly monitoringStartupTimestamp: number;
  readonly statisticsPeriodSeconds: number;
  /** Most recently active service first. */
  readonly services: readonly ServiceHealth[];
}

export interface HealthDataOptions {
  /** The reference's op-monitor.health-statistics-period-seconds; default 600. */
  readonly periodSeconds?: number;
  /** Services tracked at most; default 10,000. */
  readonly maxServices?: number;
  readonly now?: () => number;
}

/** Per-second aggregates over a sliding window of whole seconds. */
class Window {
  private readonly buckets = new Map<number, { n: number; sum: number; sumSq: number; min: number; max: number }>();

  constructor(private readonly periodSeconds: number) {}

  add(second: number, value: number): void {
    const b = this.buckets.get(second);
    if (b) {
      b.n++;
      b.sum += value;
      b.sumSq += value * value;
      b.min = Math.min(b.min, value);
      b.max = Math.max(b.max, value);
    } else {
      this.buckets.set(second, { n: 1, sum: value, sumSq: value * value, min: value, max: value });
    }
  }

  /** Drops what is older than the period before `second`. */
  trim(second: number): void {
    for (const s of this.buckets.keys()) if (s <= second - this.periodSeconds) this.buckets.delete(s);
  }

  count(second: number): number {
    this.trim(second);
    let n = 0;
    for (const b of this.buckets.values()) n += b.n;
    return n;
  }

  statistics(second: number): Statistics | undefined {
    this.trim(second);
    let n = 0;
    let sum = 0;
    let sumSq = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const b of this.buckets.values()) {
      n += b.n;
      sum += b.sum;
      sumSq += b.sumSq;
      min = Math.min(min, b.min);
      max = Math.max(max, b.max);
    }
    if (n === 0) return undefined;
    const mean = sum / n;
    const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
    return { min, mean, max, stdDev: Math.sqrt(variance) };
  }
}

interface Tracked {
  readonly service: HealthServiceId;
  lastSuccessful?: number;
  lastUnsuccessful?: number;
  serviceType?: string;
  readonly successes: Window;
  readonly failures: Window;
  readonly duration: Window;
  readonly requestSize: Window;
  readonly responseSize: Window;
}

export class HealthData {
  readonly startupTimestamp: number;
  readonly periodSeconds: number;
  private readonly maxServices: number;
  private readonly now: () => number;
  /** Insertion order is recency: a service seen again moves to the end. */
  private readonly services = new Map<string, Tracked>();

  constructor(options: HealthDataOptions = {}) {
    this.now = options.now ?? Date.now;
    this.startupTimestamp = this.now();
    this.periodSeconds = options.periodSeconds ?? 600;
    this.maxServices = options.maxServices ?? 10_000;
  }

  /** Counts one stored record (HealthDataMetrics.processRecords). */
  observe(r: OpMonitoringRecord): void {
    if (r.securityServerType !== 'Producer') return;
    const service = serviceOf(r);
    if (!service) return;
    const key = JSON.stringify([service.instance, service.memberClass, service.memberCode, service.subsystem ?? null, service.serviceCode, service.serviceVersion ?? null]);
    let t = this.services.get(key);
    if (t) this.services.delete(key);
    else {
      const w = () => new Window(this.periodSeconds);
      t = { service, successes: w(), failures: w(), duration: w(), requestSize: w(), responseSize: w() };
      if (this.services.size >= this.maxServices) this.services.delete(this.services.keys().next().value!);
    }
    this.services.set(key, t);
    const second = Math.floor(this.now() / 1000);
    if (r.succeeded) t.lastSuccessful = r.responseOutTs;
    else t.lastUnsuccessful = r.responseOutTs;
    t.serviceType = r.serviceType;
    (r.succeeded ? t.successes : t.failures).add(second, 1);
    if (r.succeeded) {
      if (r.responseOutTs !== undefined) t.duration.add(second, r.responseOutTs - r.requestInTs);
      if (r.requestSize !== undefined) t.requestSize.add(second, r.requestSize);
      if (r.responseSize !== undefined) t.responseSize.add(second, r.responseSize);
    }
  }

  /** The health data, of one provider's services when `provider` is given (exact match, as the reference's filter). */
  report(provider?: ClientId): HealthReport {
    const second = Math.floor(this.now() / 1000);
    const services: ServiceHealth[] = [];
    for (const t of [...this.services.values()].reverse()) {
      const s = t.service;
      if (provider && !(s.instance === provider.instance && s.memberClass === provider.memberClass && s.memberCode === provider.memberCode && s.subsystem === provider.subsystem)) continue;
      const successful = t.successes.count(second);
      services.push({
        service: s,
        ...(t.lastSuccessful !== undefined ? { lastSuccessfulRequestTimestamp: t.lastSuccessful } : {}),
        ...(t.lastUnsuccessful !== undefined ? { lastUnsuccessfulRequestTimestamp: t.lastUnsuccessful } : {}),
        ...(t.serviceType !== undefined ? { serviceType: t.serviceType } : {}),
        successfulRequestCount: successful,
        unsuccessfulRequestCount: t.failures.count(second),
        ...(successful > 0 ? { requestDuration: t.duration.statistics(second), requestSize: t.requestSize.statistics(second), responseSize: t.responseSize.statistics(second) } : {}),
      });
    }
    return { monitoringStartupTimestamp: this.startupTimestamp, statisticsPeriodSeconds: this.periodSeconds, services };
  }
}

/** The record's service, or undefined when a part the identifier needs is missing (HealthDataMetricsUtil.getServiceId). */
function serviceOf(r: OpMonitoringRecord): HealthServiceId | undefined {
  if (!r.serviceXRoadInstance || !r.serviceMemberClass || !r.serviceMemberCode || !r.serviceCode) return undefined;
  return {
    instance: r.serviceXRoadInstance,
    memberClass: r.serviceMemberClass,
    memberCode: r.serviceMemberCode,
    ...(r.serviceSubsystemCode ? { subsystem: r.serviceSubsystemCode } : {}),
    serviceCode: r.serviceCode,
    ...(r.serviceVersion ? { serviceVersion: r.serviceVersion } : {}),
  };
}
