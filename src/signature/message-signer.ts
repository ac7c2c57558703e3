/**
 * Signing messages (MESS_08) with a key that stays in the signer: the signature is built here, the
 * signer daemon only turns the SignedInfo digest into a signature value.
 *
 * Batching works as the reference's BatchSigner: while one signature for a key is being made,
 * messages for the same key wait; when it returns, everything that waited (up to `maxBatchSize`)
 * is covered by one hash chain and one signature. A message arriving at an idle key waits only for
 * the current event-loop turn (to gather those that arrived with it), so light traffic sees no
 * added latency and heavy traffic needs ever fewer HSM operations. With `minIntervalMs`, while a
 * key's queue keeps signing batches of several messages, its next signature starts no sooner than
 * that after the last one started: the batches stay large when the caller hands its messages over a
 * few at a time (the proxies' TurnAdmission). A key signing lone messages is never held back.
 * A lone message without attachments is signed directly (reference `/message.xml`); attachments
 * always go through a hash chain, as X-Road 7 does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { XrdError, toXrdError } from '../platform/errors.ts';
import { signatureMethodForId, type SignatureMethod } from './algorithms.ts';
import { digestOf, type DigestSource } from './digest-source.ts';
import { buildHashChains, type HashChainInput } from './hash-chain.ts';
import { HASH_CHAIN_RESULT_URI, HASH_CHAIN_URI, MESSAGE_URI } from './verifier.ts';
import { prepareSignature } from './xades.ts';

export interface SigningKey {
  readonly keyId: string;
  /** The signer's algorithm id for this key, e.g. SHA512withRSA. */
  readonly algorithm: string;
  readonly cert: Buffer;
  /** CA certificates between the signing certificate and the approved CA's top certificate. */
  readonly intermediateCerts: readonly Buffer[];
  /** OCSP responses for the signing certificate and the intermediates, from the cache. */
  readonly ocspResponses: readonly Buffer[];
  /** The token's batch_signing_enabled. */
  readonly batchSigningEnabled: boolean;
}

/** Asks the signer for a signature value over a digest (ECDSA as raw r‖s). */
export type DigestSigner = (keyId: string, algorithm: string, digest: Buffer) => Promise<Buffer>;

export interface MessageToSign {
  /** `/message.xml`: the SOAP message, or a REST message's header part. */
  readonly message: Buffer | DigestSource;
  /** `/attachment1…`: SOAP attachments, or a REST body (a DigestSource when spooled to a file). */
  readonly attachments?: readonly (Buffer | DigestSource)[];
}

export interface SignedMessage {
  readonly signatureXml: string;
  /** Present when the signature covers a hash chain (batches, attachments). */
  readonly hashChainResult?: string;
  readonly hashChain?: string;
}

export interface BatchSignerOptions {
  /** Most messages one signature covers. */
  readonly maxBatchSize?: number;
  /** Most messages waiting for one key before new ones are refused (Busy). */
  readonly maxQueued?: number;
  readonly now?: () => Date;
  /** Least time, ms, from one signature's start to the next of a queue whose last signature covered several messages (default 0: none). */
  readonly minIntervalMs?: number;
  /** The monotonic clock (ms) and the wait the interval uses (tests drive them). */
  readonly monotonic?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Waiting {
  readonly message: MessageToSign;
  readonly resolve: (signed: SignedMessage) => void;
  readonly reject: (err: Error) => void;
}

interface KeyQueue {
  /**
   * The key every message of this queue is signed with, as its first message brought it, the
   * certificate copied so that it cannot change; only its OCSP responses and intermediates are
   * replaced by those of the last message that came, since a queue under load may never empty.
   */
  key: SigningKey;
  busy: boolean;
  waiting: Waiting[];
}

export class BatchSigner {
  /** By key id; a key with a new certificate gets a queue of its own until the old one drains. */
  private readonly queues = new Map<string, KeyQueue[]>();
  private readonly maxBatchSize: number;
  private readonly maxQueued: number;
  private readonly now: () => Date;
  private readonly minIntervalMs: number;
  private readonly monotonic: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly signDigest: DigestSigner,
    options: BatchSignerOptions = {},
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 1024;
    this.maxQueued = options.maxQueued ?? 16_384;
    this.now = options.now ?? (() => new Date());
    this.minIntervalMs = options.minIntervalMs ?? 0;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.sleep = options.sleep ?? sleep;
  }

  /** @throws CannotCreateSignature (and the signer's codes: TokenNotActive, KeyNotFound, …), Busy */
  sign(key: SigningKey, message: MessageToSign): Promise<SignedMessage> {
    signatureMethodForId(key.algorithm);
    if (!key.batchSigningEnabled) return this.signBatch(key, [message]).then((all) => all[0]!);
    // Messages for the same key and certificate are batched together: the certificate is compared
    // byte for byte (no digest of it per message), so a different one never joins the batch.
    let queues = this.queues.get(key.keyId);
    if (!queues) this.queues.set(key.keyId, (queues = []));
    let queue = queues.find((q) => q.key.cert.equals(key.cert));
    if (!queue) queues.push((queue = { key: { ...key, cert: Buffer.from(key.cert) }, busy: false, waiting: [] }));
    else if (key.ocspResponses !== queue.key.ocspResponses || key.intermediateCerts !== queue.key.intermediateCerts) queue.key = { ...queue.key, ocspResponses: key.ocspResponses, intermediateCerts: key.intermediateCerts };
    if (queue.waiting.length >= this.maxQueued) return Promise.reject(new XrdError('Busy', { tokenId: key.keyId }));
    const started = queue;
    return new Promise((resolve, reject) => {
      started.waiting.push({ message, resolve, reject });
      if (!started.busy) {
        started.busy = true;
        // Wait out the current I/O phase: requests that arrived together are signed together.
        setImmediate(() => void this.drain(started));
      }
    });
  }

  private async drain(queue: KeyQueue): Promise<void> {
    let lastStart = 0;
    let lastSize = 0;
    while (queue.waiting.length > 0) {
      const wait = lastStart + this.minIntervalMs - this.monotonic();
      if (lastSize > 1 && wait > 0 && queue.waiting.length < this.maxBatchSize) await this.sleep(wait);
      lastStart = this.monotonic();
      const batch = queue.waiting.splice(0, this.maxBatchSize);
      lastSize = batch.length;
      try {
        const signed = await this.signBatch(queue.key, batch.map((w) => w.message));
        batch.forEach((w, i) => w.resolve(signed[i]!));
      } catch (err) {
        const e = toXrdError(err);
        for (const w of batch) w.reject(e);
      }
    }
    queue.busy = false;
    const keyId = queue.key.keyId;
    const queues = this.queues.get(keyId)!;
    queues.splice(queues.indexOf(queue), 1);
    if (queues.length === 0) this.queues.delete(keyId);
  }

  /** One signature over the messages: directly for a lone message without attachments, else through a hash chain. */
  private async signBatch(key: SigningKey, messages: readonly MessageToSign[]): Promise<SignedMessage[]> {
    const method = signatureMethodForId(key.algorithm);
    const direct = messages.length === 1 && (messages[0]!.attachments?.length ?? 0) === 0;
    if (direct) {
      const signatureXml = await this.signReferences(key, method, MESSAGE_URI, digestOf(messages[0]!.message, method.digest), 'text/xml');
      return [{ signatureXml }];
    }
    const chains = buildHashChains(messages.map(partsOf), HASH_CHAIN_URI, method.digest);
    const signatureXml = await this.signReferences(key, method, HASH_CHAIN_RESULT_URI, digestOf(Buffer.from(chains.result), method.digest), 'application/hash-chain-result');
    return chains.chains.map((hashChain) => ({ signatureXml, hashChainResult: chains.result, hashChain }));
  }

  private async signReferences(key: SigningKey, method: SignatureMethod, uri: string, digest: Buffer, mimeType: string): Promise<string> {
    const prepared = prepareSignature({
      references: [{ uri, digest }],
      mimeType,
      method,
      signingCert: key.cert,
      intermediateCerts: key.intermediateCerts,
      ocspResponses: key.ocspResponses,
      signingTime: this.now(),
    });
    let value: Buffer;
    try {
      value = await this.signDigest(key.keyId, key.algorithm, prepared.signedInfoDigest);
    } catch (err) {
      throw err instanceof XrdError ? err : new XrdError('CannotCreateSignature', { reason: (err as Error).message }, { cause: err });
    }
    return prepared.finish(value);
  }
}

/** The hash-chain inputs of one message. */
export function partsOf(message: MessageToSign): HashChainInput[] {
  return [{ uri: MESSAGE_URI, data: message.message }, ...(message.attachments ?? []).map((data, i) => ({ uri: `/attachment${i + 1}`, data }))];
}
