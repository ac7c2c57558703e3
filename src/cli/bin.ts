/**
 * The `xrd` process: runs one command and exits with its code (`daemon start`, `proxy start` and
 * `admin start` never resolve; every other command ends here, closing stdin readers too). Compiled
 * to dist/cli/bin.js, it is what a production install runs (the systemd units, /usr/bin/xrd);
 * scripts/xrd.mjs runs it from a checkout.
 */
import { main } from './xrd.ts';

process.exit(await main(process.argv.slice(2)));
