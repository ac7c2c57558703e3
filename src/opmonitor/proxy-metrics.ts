/**
 * What the proxy's `/metrics` shows: per-message counters, durations and sizes taken from the
 * operational monitoring records (so the metrics and the stored records count the same messages),
 * and the signer daemon's health as gauges, so one scrape of the proxy covers the HSM side too.
 *
 * Labels are kept to bounded sets: direction, protocol, result, the service (configured services
 * only) and fault codes (a fixed table). Clients are left out: there can be any number of them,
 * and the stored records answer per-client questions.
 */
import { SIGNATURE_DURATION_BUCKETS, type HealthView } from '../signerapi/operations.ts';
import { DURATION_BUCKETS, MetricsRegistry, STAGE_BUCKETS, SIZE_BUCKETS, type Counter, type Gauge, type Histogram } from './metrics.ts';
import { serviceLabel, type OpMonitoringRecord } from './record.ts';

/**
 * `outbound`: the client proxy mediated a request of one of our information systems
 * (securityServerType Client); `inbound`: the server proxy mediated a request to one of our
 * providers (securityServerType Producer).
 */
export type Direction = 'outbound' | 'inbound';

export const directionOf = (r: OpMonitoringRecord): Direction => (r.securityServerType === 'Client' ? 'outbound' : 'inbound');

export class ProxyMetrics {
  private readonly requests: Counter;
  private readonly faults: Counter;
  private readonly duration: Histogram;
  private readonly serviceDuration: Histogram;
  private readonly requestSize: Histogram;
  private readonly responseSize: Histogram;
  private readonly stageDuration: Histogram;

  constructor(readonly registry: MetricsRegistry = new MetricsRegistry()) {
    this.requests = registry.counter('xrd_proxy_requests_total', 'Messages mediated, by direction, protocol, service and result (success or fault).', ['direction', 'protocol', 'service', 'result']);
    this.faults = registry.counter('xrd_proxy_faults_total', 'Messages that ended in a fault, by direction and fault code.', ['direction', 'fault_code']);
    this.duration = registry.histogram(
      'xrd_proxy_request_duration_seconds',
      'Time from the request reaching this security server to the response leaving it.',
      ['direction', 'service'],
      DURATION_BUCKETS,
    );
    this.serviceDuration = registry.histogram(
      'xrd_proxy_service_duration_seconds',
      'Time the far side took: from sending the request on to receiving the response (outbound: the provider security server and service; inbound: the provider information system).',
      ['direction', 'service'],
      DURATION_BUCKETS,
    );
    this.requestSize = registry.histogram('xrd_proxy_request_size_bytes', 'Request size in bytes (the whole MIME container when there are attachments).', ['direction'], SIZE_BUCKETS);
    this.responseSize = registry.histogram('xrd_proxy_response_size_bytes', 'Response size in bytes (the whole MIME container when there are attachments).', ['direction'], SIZE_BUCKETS);
    this.stageDuration = registry.histogram(
      'xrd_proxy_stage_duration_seconds',
      'Time one message spent in each stage of the proxy pipeline (receive, authenticate, authorize, sign = the signer round trip, log = the message log commits, send = the far side, verify, answer), by direction and stage.',
      ['direction', 'stage'],
      STAGE_BUCKETS,
    );
  }

  /** The stage durations (seconds) of one exchange (src/proxy/shared/pipeline.ts), as its proxy's MessageRecorder reports them. */
  observeStages(side: 'Client' | 'Producer', durations: Readonly<Partial<Record<string, number>>>): void {
    const direction: Direction = side === 'Client' ? 'outbound' : 'inbound';
    for (const [stage, seconds] of Object.entries(durations)) if (seconds !== undefined) this.stageDuration.observe({ direction, stage }, seconds);
  }

  /** Counts one mediated message. Pass it as OpMonitor's `onStore`. */
  observe(r: OpMonitoringRecord): void {
    const direction = directionOf(r);
    const service = serviceLabel(r) ?? 'unknown';
    const protocol = r.restMethod !== undefined || r.serviceType === 'REST' || r.serviceType === 'OPENAPI3' ? 'rest' : 'soap';
    this.requests.inc({ direction, protocol, service, result: r.succeeded ? 'success' : 'fault' });
    if (!r.succeeded) this.faults.inc({ direction, fault_code: r.faultCode ?? 'unknown' });
    if (r.responseOutTs !== undefined) this.duration.observe({ direction, service }, (r.responseOutTs - r.requestInTs) / 1000);
    if (r.requestOutTs !== undefined && r.responseInTs !== undefined) this.serviceDuration.observe({ direction, service }, (r.responseInTs - r.requestOutTs) / 1000);
    const requestBytes = r.requestMimeSize ?? r.requestSize;
    const responseBytes = r.responseMimeSize ?? r.responseSize;
    if (requestBytes !== undefined) this.requestSize.observe({ direction }, requestBytes);
    if (responseBytes !== undefined) this.responseSize.observe({ direction }, responseBytes);
  }
}

/**
 * A `health` answer as daemons of any version give it: the event-loop delays, the signature
 * statistics and the OCSP responses came later, and a proxy may be upgraded before its signer.
 */
export type ReportedHealth = Omit<HealthView, 'eventLoopDelay' | 'signatures' | 'ocsp'> & Partial<Pick<HealthView, 'eventLoopDelay' | 'signatures' | 'ocsp'>>;

/**
 * The signer daemon's `health` answer as gauges. Call `refresh` before writing the registry for a
 * scrape; a daemon that does not answer shows as `xrd_signer_up 0` with no token series, rather
 * than as the last state it reported.
 */
export class SignerMetrics {
  private readonly up: Gauge;
  private readonly healthy: Gauge;
  private readonly uptime: Gauge;
  private readonly moduleLoaded: Gauge;
  private readonly tokenAvailable: Gauge;
  private readonly tokenActive: Gauge;
  private readonly tokenStatus: Gauge;
  private readonly loopDelayP50: Gauge;
  private readonly loopDelayP99: Gauge;
  private readonly loopDelayMax: Gauge;
  private readonly signatures: Counter;
  private readonly signatureDuration: Histogram;
  private readonly ocspAge: Gauge;
  private readonly ocspStatus: Gauge;

  constructor(readonly registry: MetricsRegistry) {
    this.up = registry.gauge('xrd_signer_up', '1 when the signer daemon answered the last health request, 0 when it did not.');
    this.healthy = registry.gauge('xrd_signer_healthy', '1 when the signer reports status ok (every PKCS#11 module loaded), 0 when degraded or unreachable.');
    this.uptime = registry.gauge('xrd_signer_uptime_seconds', 'Seconds since the signer daemon started.');
    this.moduleLoaded = registry.gauge('xrd_signer_module_loaded', '1 when the PKCS#11 module is loaded.', ['type', 'library']);
    this.tokenAvailable = registry.gauge('xrd_signer_token_available', '1 when the token is present in its slot.', ['token']);
    this.tokenActive = registry.gauge('xrd_signer_token_active', '1 when the token is logged in (keys usable).', ['token']);
    this.tokenStatus = registry.gauge('xrd_signer_token_status', 'The token status as X-Road names it (OK, USER_PIN_LOCKED, NOT_AVAILABLE, ...): 1 for the current one.', ['token', 'status']);
    // The signer measures its event loop since start (or its last resetStats); these mirror it.
    this.loopDelayP50 = registry.gauge('xrd_signer_event_loop_delay_p50_seconds', 'Median event-loop delay of the signer daemon.');
    this.loopDelayP99 = registry.gauge('xrd_signer_event_loop_delay_p99_seconds', '99th percentile event-loop delay of the signer daemon.');
    this.loopDelayMax = registry.gauge('xrd_signer_event_loop_delay_max_seconds', 'Largest event-loop delay of the signer daemon.');
    // Kept by the signer since it started; mirrored here at each scrape.
    this.signatures = registry.counter('xrd_signer_signatures_total', 'Signature requests to the signer by key and result (success, or the error code such as TokenNotActive); key "unknown" for keys the signer does not have.', ['key', 'result']);
    this.signatureDuration = registry.histogram('xrd_signer_signature_duration_seconds', 'Time the signer took for a signature request, by key, whatever the result.', ['key'], SIGNATURE_DURATION_BUCKETS);
    this.ocspAge = registry.gauge('xrd_signer_ocsp_response_age_seconds', "Seconds since the cached OCSP response's thisUpdate, by certificate (SHA-1 hex); compare with the global configuration's ocspFreshnessSeconds.", ['cert']);
    this.ocspStatus = registry.gauge('xrd_signer_ocsp_status', 'The certificate status in the cached OCSP response (good, revoked, unknown): 1 for the current one.', ['cert', 'status']);
  }

  /** What an older daemon does not report shows as unknown (NaN) or as no series, not as down. */
  update(h: ReportedHealth): void {
    this.up.set(undefined, 1);
    this.healthy.set(undefined, h.status === 'ok' ? 1 : 0);
    this.uptime.set(undefined, h.uptimeSeconds);
    this.clearState();
    for (const m of h.modules) this.moduleLoaded.set({ type: m.type, library: m.library }, m.loaded ? 1 : 0);
    for (const t of h.tokens) {
      this.tokenAvailable.set({ token: t.tokenId }, t.available ? 1 : 0);
      this.tokenActive.set({ token: t.tokenId }, t.active ? 1 : 0);
      this.tokenStatus.set({ token: t.tokenId, status: t.status }, 1);
    }
    const delay = h.eventLoopDelay;
    this.loopDelayP50.set(undefined, delay ? delay.p50Ms / 1000 : NaN);
    this.loopDelayP99.set(undefined, delay ? delay.p99Ms / 1000 : NaN);
    this.loopDelayMax.set(undefined, delay ? delay.maxMs / 1000 : NaN);
    const signatures = h.signatures ?? { buckets: [], keys: [] };
    const sameBuckets = signatures.buckets.length === SIGNATURE_DURATION_BUCKETS.length && signatures.buckets.every((b, i) => b === SIGNATURE_DURATION_BUCKETS[i]);
    for (const k of signatures.keys) {
      for (const [result, total] of Object.entries(k.results)) this.signatures.mirror({ key: k.keyId, result }, total);
      // A daemon with other bounds (another version) shows counts but no histogram rather than a wrong one.
      if (sameBuckets) this.signatureDuration.mirror({ key: k.keyId }, { counts: k.duration.counts, sum: k.duration.sumSeconds, count: k.duration.count });
    }
    for (const o of h.ocsp ?? []) {
      this.ocspAge.set({ cert: o.certHash }, o.ageSeconds);
      this.ocspStatus.set({ cert: o.certHash, status: o.status }, 1);
    }
  }

  /** No answer: up and healthy 0, token, module, signature and OCSP series gone, uptime and delays NaN (unknown). */
  unreachable(): void {
    this.up.set(undefined, 0);
    this.healthy.set(undefined, 0);
    for (const g of [this.uptime, this.loopDelayP50, this.loopDelayP99, this.loopDelayMax]) g.set(undefined, NaN);
    this.clearState();
  }

  /** Asks the signer (e.g. `() => signer.call('health', {})`) and updates the gauges from its answer. */
  async refresh(fetchHealth: () => Promise<ReportedHealth>): Promise<void> {
    try {
      this.update(await fetchHealth());
    } catch {
      this.unreachable();
    }
  }

  private clearState(): void {
    for (const g of [this.moduleLoaded, this.tokenAvailable, this.tokenActive, this.tokenStatus, this.signatures, this.signatureDuration, this.ocspAge, this.ocspStatus]) g.reset();
  }
}
