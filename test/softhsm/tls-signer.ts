/**
 * The signer daemon in a process of its own for test/softhsm/tls-*.test.ts (the engine's calls are
 * synchronous, so the daemon cannot share a process with a TLS side), started with no PIN: the test
 * logs tokens in through the socket. Same daemon as `xrd daemon start`, without the CLI around it.
 * Arguments: <data dir> <devices.ini> <global conf dir>.
 */
import { startSignerDaemon } from '../../src/signer/signer-daemon.ts';
import { createLogger } from '../../src/platform/logger.ts';

const [dataDir, devicesIni, globalConfDir] = process.argv.slice(2);
const daemon = await startSignerDaemon({ dataDir: dataDir!, devicesIni: devicesIni!, globalConfDir: globalConfDir! }, createLogger('signer', 'error'));
process.once('SIGTERM', () => void daemon.close().then(() => process.exit(0)));
process.stdout.write(`signer listening on ${daemon.socketPath}\n`);
