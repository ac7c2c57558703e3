// Loaded with `node --import` into a command under test: reports its peak resident memory on exit.
// VmHWM, not resourceUsage().maxRSS: Linux carries maxRSS over from the forking parent across exec.
import { readFileSync } from 'node:fs';

process.on('exit', () => process.stderr.write(`max-rss-kib ${/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]}\n`));
