/**
 * A token that disappears and comes back (softhsm/fault-injector.c between the signer and SoftHSM):
 * callers get a coded error while it is gone, and the next request after its return succeeds
 * without restarting the daemon or typing the PIN again.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.ts';
import { SignerClient } from '../../src/signerapi/signer-client.ts';
import { startSignerDaemon, type SignerDaemon } from '../../src/signer/signer-daemon.ts';
import { createTestbed, resetSessionsSilently, setPinRejected, setTokenRemoved, type Testbed } from '../../softhsm/testbed.ts';

let testbed: Testbed;
let daemon: SignerDaemon;
let client: SignerClient;
let other: SignerClient;

beforeAll(async () => {
  testbed = createTestbed({ faultInjector: true });
  daemon = await startSignerDaemon({ dataDir: testbed.dataDir, devicesIni: testbed.devicesIni }, silentLogger());
  client = await SignerClient.connect(daemon.socketPath);
  other = await SignerClient.connect(daemon.socketPath);
});

afterAll(async () => {
  setTokenRemoved(testbed, false);
  client.close();
  other.close();
  await daemon.close();
  testbed.cleanup();
});

const digest = (s: string) => createHash('sha256').update(s).digest().toString('base64');

describe('token removed and returned', () => {
  it('fails with TokenNotAvailable while removed and signs again once back, PIN kept in the daemon', async () => {
    const token = await client.call('initToken', { label: 'removable', soPin: '0000', userPin: '4321' });
    await client.call('activateToken', { token: token.tokenId, pin: '4321' });
    const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'EC', usage: 'SIGNING' });
    const publicKey = createPublicKey({ key: Buffer.from(key.publicKey!, 'base64'), format: 'der', type: 'spki' });
    const sign = (c: SignerClient, m: string) => c.call('sign', { keyId: key.keyId, algorithm: 'SHA256withECDSA', digest: digest(m) });

    expect(verify('sha256', Buffer.from('before'), publicKey, Buffer.from((await sign(client, 'before')).signature, 'base64'))).toBe(true);

    setTokenRemoved(testbed, true);
    await expect(sign(client, 'gone')).rejects.toMatchObject({ code: 'TokenNotAvailable', faultCode: 'Signer.TokenNotAvailable' });
    await expect(sign(other, 'gone again')).rejects.toMatchObject({ code: 'TokenNotAvailable' });
    const health = await other.call('health', {});
    expect(health.tokens.find((t) => t.tokenId === token.tokenId)).toMatchObject({ available: false, status: 'NOT_AVAILABLE' });

    setTokenRemoved(testbed, false);
    // The first request after the return finds the token, opens new sessions and logs in again.
    const after = await sign(other, 'after');
    expect(verify('sha256', Buffer.from('after'), publicKey, Buffer.from(after.signature, 'base64'))).toBe(true);
    expect((await client.call('getToken', { token: token.tokenId })).active).toBe(true);
  });

  it('recovers transparently when every session was lost behind its back (device reset)', async () => {
    const key = (await client.call('listKeys', {})).find((k) => k.usage === 'SIGNING')!;
    const sign = () => client.call('sign', { keyId: key.keyId, algorithm: 'SHA256withECDSA', digest: digest('x') });
    await sign();
    // The module closes all sessions, and with them the login, without telling anyone: the pooled
    // sessions now answer CKR_SESSION_HANDLE_INVALID and the signer must reopen and log in again.
    resetSessionsSilently(testbed);
    const results = await Promise.all(Array.from({ length: 20 }, sign));
    expect(results).toHaveLength(20);
    const tokenId = key.tokenId;
    expect((await client.call('getToken', { token: tokenId })).active).toBe(true);
  });

  it('a held PIN that was changed elsewhere is tried once, then forgotten (no lock-out by retries)', async () => {
    const token = await client.call('initToken', { label: 'pin-elsewhere', soPin: '0000', userPin: '5555' });
    await client.call('activateToken', { token: token.tokenId, pin: '5555' });
    const key = await client.call('generateKey', { token: token.tokenId, algorithm: 'EC', usage: 'SIGNING' });
    const sign = () => client.call('sign', { keyId: key.keyId, algorithm: 'SHA256withECDSA', digest: digest('y') });
    // The PIN is changed elsewhere, and the device resets: the signer's automatic login must fail once.
    setPinRejected(testbed, true);
    resetSessionsSilently(testbed);
    await expect(sign()).rejects.toMatchObject({ code: 'PinIncorrect' });
    await expect(sign()).rejects.toMatchObject({ code: 'TokenNotActive' });
    expect((await client.call('getToken', { token: token.tokenId })).status).toBe('USER_PIN_INCORRECT');
    setPinRejected(testbed, false);
    await client.call('activateToken', { token: token.tokenId, pin: '5555' });
    await expect(sign()).resolves.toHaveProperty('signature');
  });
});
