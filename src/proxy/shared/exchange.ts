/**
 * What both proxies share about one exchange: the settings that bound what they read, the bodies an
 * exchange received (spool files removed once its answer has gone out, whatever happened), the
 * answer a proxy's pipeline gives (status, header pairs, pieces) and writing it out (sendPieces).
 */
import type { ServerResponse } from 'node:http';
import type { FaultCodeStyle } from '../../protocol/faults.ts';
import type { SpoolFolder, Body, Pieces } from '../../platform/spool.ts';
import { piecesLength, sendPieces } from '../../platform/spool.ts';

/**
 * The version we send as `x-proxy-version`: the reference's protocol level we implement (7.8), so
 * servers configured with `server-min-supported-client-version` (7.6.0 in the FI and EE defaults)
 * accept us; the build metadata names us and semver ignores it in comparisons (docs/interop.md).
 */
export const PROXY_VERSION = '7.8.0+xrd';

export interface MessageSettings {
  /** Where attachments and REST bodies above the spool threshold go. */
  readonly spool: SpoolFolder;
  /** Most bytes of a message; unlimited when not given (the reference's default). */
  readonly maxMessageBytes?: number;
  /** Most bytes of a SOAP envelope, REST header part, signature or OCSP response, held in memory. */
  readonly maxSoapBytes: number;
  /** How the faults we write spell their codes (7.7's CamelCase by default, or 7.8's snake_case). */
  readonly faultCodes: FaultCodeStyle;
}

export const DEFAULT_MAX_SOAP_BYTES = 64 * 1024 * 1024;

/** The bodies one exchange received, disposed of together. */
export class ExchangeBodies {
  private readonly bodies: Body[] = [];

  add(...bodies: Body[]): void {
    this.bodies.push(...bodies);
  }

  dispose(): void {
    for (const b of this.bodies.splice(0)) b.dispose();
  }
}

/** What a proxy's pipeline answers; the HTTP binding writes it (sendAnswer), then calls `done`. */
export interface ProxyAnswer {
  readonly status: number;
  /** Raw header pairs, repeated names kept (a REST service's Set-Cookie). */
  readonly headers: readonly (readonly [string, string])[];
  readonly pieces: Pieces;
  /** Disposes of the exchange's bodies, once the answer has gone out. */
  readonly done: () => void;
}

/**
 * Writes an answer (header pairs, repeated names kept; Content-Length from the pieces) and calls
 * `done` once it has gone out or the connection broke.
 */
export function sendAnswer(res: ServerResponse, status: number, headers: readonly (readonly [string, string])[], pieces: Pieces, done: () => void): void {
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  // The caller may have gone while the answer was being made: its close has been and gone.
  if (res.destroyed) return finish();
  res.once('close', finish);
  res.once('finish', finish);
  const head = res.req.method === 'HEAD' ? [] : [['content-length', String(piecesLength(pieces))]];
  res.writeHead(status, [...headers, ...head].flat());
  sendPieces(res, pieces, () => res.destroy());
}
