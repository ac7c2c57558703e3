/** Fault codes from peers of either generation read as the codes we emit (facts §8). */
import { describe, expect, it } from 'vitest';
import { normalizeFaultCode } from '../../src/platform/errors.ts';

describe('fault codes from peers', () => {
  it("reads 7.8's snake_case codes as the CamelCase ones we emit", () => {
    expect(normalizeFaultCode('server.clientproxy.ssl_authentication_failed')).toBe('Server.ClientProxy.SslAuthenticationFailed');
    expect(normalizeFaultCode('server.serverproxy.malformed_signature.hashchain_unused_inputs')).toBe('Server.ServerProxy.MalformedSignature.HashChainUnusedInputs');
    expect(normalizeFaultCode('signer.hsm_non_operational')).toBe('Signer.HSMNonOperational');
    expect(normalizeFaultCode('Server.ServerProxy.InvalidSignatureValue')).toBe('Server.ServerProxy.InvalidSignatureValue');
    expect(normalizeFaultCode('client.io_error')).toBe('Client.IOError');
  });
});
