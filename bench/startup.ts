import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, header } from './common.ts';

const BIN = fileURLToPath(new URL('../bin/gradelab.mjs', import.meta.url));
const IMPORT_LOG = fileURLToPath(new URL('./importLog.mjs', import.meta.url));
const SLIDE = fileURLToPath(new URL('../../shared/fixtures/slides/osp_small.svs', import.meta.url));
const HEAVY = ['onnxruntime-node', '@tensorflow/', 'vega', 'pdfkit', 'puppeteer'];
const TARGET_MS = 500;

const commands: [string, string[]][] = [
  ['gradelab --version', ['--version']],
  ['gradelab --help', ['--help']],
  ['gradelab slide info', ['slide', 'info', SLIDE]],
  ['gradelab predict --help', ['predict', '--help']],
  ['gradelab train --help', ['train', '--help']],
];

function seconds(args: string[]): number {
  const t0 = performance.now();
  execFileSync(process.execPath, args, { stdio: 'ignore' });
  return (performance.now() - t0) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Packages (of HEAVY) a command loaded: the import hook logs every resolved module URL. */
function heavyLoaded(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'gradelab-startup-'));
  const log = join(dir, 'imports.log');
  try {
    execFileSync(process.execPath, ['--import', IMPORT_LOG, BIN, ...args], {
      stdio: 'ignore',
      env: { ...process.env, GRADELAB_IMPORT_LOG: log },
    });
    const urls = readFileSync(log, 'utf8');
    return HEAVY.filter((p) => urls.includes(`/node_modules/${p}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Start-up of the compiled command against bare Node in the same run (rounds interleaved, so a busy
 * machine slows both alike): median seconds over 9 rounds, the time above `node -e 0`, and which heavy
 * packages each command loaded. Target: under 0.5 s above Node for --help and slide info.
 */
export async function benchStartup(): Promise<void> {
  header(`start-up: median of 9 interleaved rounds, against node -e 0 (target: under ${TARGET_MS} ms above it)`);
  const rounds = 9;
  const bare: number[] = [];
  const times = commands.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    bare.push(seconds(['-e', '0']));
    commands.forEach(([, args], i) => times[i].push(seconds([BIN, ...args])));
  }
  const base = median(bare);
  process.stdout.write(`node -e 0                  ${fmt(base * 1000, 0)} ms\n`);
  commands.forEach(([name, args], i) => {
    const above = (median(times[i]) - base) * 1000;
    const heavy = heavyLoaded(args);
    process.stdout.write(
      `${name.padEnd(26)} ${fmt(median(times[i]) * 1000, 0)} ms  (+${fmt(above, 0)} ms, ${fmt(median(times[i]) / base, 1)}x node)  ${above < TARGET_MS ? 'meets target' : 'OVER TARGET'}  heavy packages: ${heavy.join(', ') || 'none'}\n`,
    );
  });
}
