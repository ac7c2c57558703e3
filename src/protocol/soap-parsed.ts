/**
 * A SOAP message parsed once for everything a proxy asks of it: whether it is a fault
 * (readSoapFault's answer), its X-Road header (parseSoapHeader's checks and codes) and, for a
 * service's response, the same bytes with the request hash put in (withRequestHash). Parsing is the
 * larger part of a proxy's CPU per message; before, a message was parsed once per question.
 *
 * A message that is not XML is not refused when read: the fault question answers "none", as
 * readSoapFault does, and the header question throws parseSoapHeader's InvalidSoap — so callers keep
 * the order of their checks.
 */
import { faultIn, type ReceivedSoapFault } from './faults.ts';
import { headerOf, insertRequestHash, parseEnvelope, type SoapHeader } from './soap-message.ts';
import type { XmlElement } from '../xml/xml-tree.ts';

export class ParsedSoap {
  private readonly envelope: XmlElement | undefined;
  private readonly error: unknown;

  constructor(readonly bytes: Buffer) {
    try {
      this.envelope = parseEnvelope(bytes);
    } catch (err) {
      this.error = err;
    }
  }

  /** The SOAP fault the message is, or undefined (also when it is not XML). @throws InvalidSoap for a fault without faultcode or faultstring */
  fault(): ReceivedSoapFault | undefined {
    return this.envelope && faultIn(this.envelope, this.bytes);
  }

  /** @throws what parseSoapHeader throws */
  header(): SoapHeader {
    if (!this.envelope) throw this.error;
    return headerOf(this.envelope);
  }

  /** A service's response: checked as parseSoapHeader checks it, then given the hash of `request`. @throws what parseSoapHeader throws, InvalidSoap (no xrd:id) */
  withRequestHash(request: Buffer): { header: SoapHeader; message: Buffer } {
    const header = this.header();
    return { header, message: insertRequestHash(this.bytes.toString('utf8'), this.envelope!, request) };
  }
}
