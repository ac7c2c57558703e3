// Preloaded by scripts/profile-proxy.ts into the local instance's child processes
// (NODE_OPTIONS=--require …; Node 20 refuses --cpu-prof in NODE_OPTIONS): SIGUSR2 starts the V8
// sampling profiler, the next SIGUSR2 stops it and writes
// <XRD_CPU_PROFILE_DIR>/<command>-<pid>-<n>.cpuprofile, so a profile covers one load phase only,
// not the start-up (module loading and transpiling dominate that).
'use strict';
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { isMainThread } = require('node:worker_threads');

const dir = process.env.XRD_CPU_PROFILE_DIR;
if (dir && isMainThread) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 250 });
  const command = process.argv.slice(2).filter((a) => !a.startsWith('-')).slice(0, 2).join('-') || 'node';
  let running = false;
  let n = 0;
  process.on('SIGUSR2', () => {
    if (!running) {
      session.post('Profiler.start');
      running = true;
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(join(dir, `${command}-${process.pid}-${++n}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
