/**
 * Certificate profiles: how an approved CA writes a member's identity into a signing certificate's
 * subject. The global configuration names the profile per CA (certificateProfileInfo, a Java class
 * name in the reference); MESS_11 compares the member read from the certificate with the message's
 * signer.
 */
import { XrdError } from '../platform/errors.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { certificateDerParts, nameFields } from './certificate.ts';

type Decoder = (field: (type: string) => string | undefined, instance: string) => ClientId | undefined;

const PROFILES: Record<string, Decoder> = {
  // Finland: C=FI, O=<name>, CN=<member code>, serialNumber=<instance>/<server code>/<member class>
  FiVRK: (field) => {
    const [instance, , memberClass] = field('serialNumber')?.split('/') ?? [];
    const memberCode = field('CN');
    return instance && memberClass && memberCode ? { instance, memberClass, memberCode } : undefined;
  },
  // The reference's default (EJBCA): C=<instance>, O=<member class>, CN=<member code>
  Ejbca: (field) => {
    const [instance, memberClass, memberCode] = [field('C'), field('O'), field('CN')];
    return instance && memberClass && memberCode ? { instance, memberClass, memberCode } : undefined;
  },
};

/** The profile a configuration's certificateProfileInfo class name stands for. */
function profileOf(className: string): Decoder | undefined {
  if (/FiVRK/i.test(className)) return PROFILES.FiVRK;
  if (/Ejbca/i.test(className)) return PROFILES.Ejbca;
  return undefined;
}

/**
 * The member a signing certificate was issued to, per the issuing CA's profile.
 * @throws IncorrectCertificate when the profile is unknown or the subject lacks the fields it needs
 */
export function memberOfSigningCert(cert: Buffer, profileClassName: string, instance: string): ClientId {
  // Asked for every message verified, mostly of the same few certificates: remembered by the whole
  // certificate (a shorter key could be forged), the profile and the instance. Failures are not.
  const key = `${profileClassName}\u0000${instance}\u0000${cert.toString('latin1')}`;
  const known = members.get(key);
  if (known) return known;
  const decode = profileOf(profileClassName);
  if (!decode) throw new XrdError('IncorrectCertificate', { reason: `certificate profile ${profileClassName} is not supported` });
  const fields = nameFields(certificateDerParts(cert).subjectName);
  const member = decode((type) => fields.find(([t]) => t === type)?.[1], instance);
  if (!member) throw new XrdError('IncorrectCertificate', { reason: `the subject does not name a member as profile ${profileClassName} requires` });
  if (members.size >= MEMBERS_LIMIT) members.delete(members.keys().next().value!);
  members.set(key, Object.freeze(member));
  return member;
}

const MEMBERS_LIMIT = 256;
const members = new Map<string, ClientId>();
