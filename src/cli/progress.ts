import cliProgress from 'cli-progress';

import type { Progress } from '../core/index.ts';

export type { Progress };

/**
 * A progress bar on stderr when it is a terminal (items, rate, ETA); in pipes and CI, a plain line every
 * few seconds instead of escape codes.
 */
export function createProgress(unit: string, extraFormat = ''): Progress {
  const tty = process.stderr.isTTY === true && process.env.GRADELAB_LOG !== 'quiet';
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `{label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}${extraFormat}`,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = 0;
    let done = 0;
    let stopped = false;
    const rate = () => (done / Math.max(1e-3, (Date.now() - started) / 1000) || 0).toFixed(1);
    return {
      start(total, label) {
        started = Date.now();
        bar.start(total, 0, { label, rate: '0' });
      },
      setTotal: (t) => bar.setTotal(t),
      increment(n = 1, payload = {}) {
        done += n;
        bar.increment(n, { ...payload, rate: rate() });
      },
      update: (payload) => bar.update(payload),
      stop: () => {
        // A bar that never started (the command failed first) leaves no trace.
        if (stopped || !started) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  let total = 0;
  let done = 0;
  let started = 0;
  let lastPrint = 0;
  let label = '';
  let stopped = false;
  const quiet = process.env.GRADELAB_LOG === 'quiet';
  const print = (force = false) => {
    const now = Date.now();
    if (quiet || (!force && now - lastPrint < 5000)) return;
    lastPrint = now;
    const secs = (now - started) / 1000;
    const r = done / Math.max(secs, 1e-3);
    const eta = r > 0 && total > done ? `, ETA ${Math.round((total - done) / r)} s` : '';
    process.stderr.write(`${label}: ${done}/${total} ${unit} (${r.toFixed(1)} ${unit}/s${eta})\n`);
  };
  return {
    start(t, l) {
      total = t;
      label = l;
      started = Date.now();
      lastPrint = started;
    },
    setTotal: (t) => (total = t),
    increment(n = 1) {
      done += n;
      print();
    },
    update: () => undefined,
    stop: () => {
      if (stopped || !started) return;
      stopped = true;
      print(true);
    },
  };
}
