#!/usr/bin/env node
// Entry point of the `xrd` command: runs the TypeScript sources directly through tsx, so a checkout
// works without a build step (`npx xrd …`, `node scripts/xrd.mjs …`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/xrd.ts');
const code = await main(process.argv.slice(2));
// `daemon start` never resolves; every other command ends here, closing stdin readers too.
process.exit(code);
