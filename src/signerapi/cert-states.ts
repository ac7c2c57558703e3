/**
 * The states of a certificate in the signer's key configuration (X-Road's keyconf), as the
 * reference names them; `setCertStatus` takes one, certificate views carry one.
 */
export const CERT_STATUSES = ['saved', 'registration in progress', 'registered', 'deletion in progress', 'global error'] as const;
export type CertStatus = (typeof CERT_STATUSES)[number];
