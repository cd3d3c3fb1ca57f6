import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSynthetic } from '../../src/synth/index.ts';
import { filesUnder, tempDir, threeProcessesOneKilled } from '../helpers.ts';

const bin = fileURLToPath(new URL('../../bin/gradelab.mjs', import.meta.url));
const dir = tempDir();
let manifest = '';
const tiling = ['--tile-size', '32', '--mpp', '0.5', '--min-tissue', '0.3'];

const tile = (out: string) => ['tile', '--manifest', manifest, '--out', out, ...tiling];

beforeAll(async () => {
  ({ manifest } = await generateSynthetic({
    task: 'prostate',
    slides: 4,
    out: join(dir, 'slides'),
    size: 768,
    sites: 2,
    anomalies: 0,
    seed: 4,
  }));
  const r = spawnSync(process.execPath, [bin, ...tile(join(dir, 'single'))], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}, 600_000);

describe('tiling one folder from several processes', () => {
  it('three processes, one killed mid-slide: the dataset is byte for byte the one a single process writes', async () => {
    const out = join(dir, 'shared');
    const [killed, ...rest] = await threeProcessesOneKilled(bin, tile(out), out);
    expect(killed.signal).toBe('SIGKILL');
    for (const r of rest) expect(r.code, r.stderr).toBe(0);
    const single = filesUnder(join(dir, 'single'));
    const shared = filesUnder(out);
    expect([...shared.keys()].sort()).toEqual([...single.keys()].sort());
    for (const [f, bytes] of single) expect(shared.get(f)!.equals(bytes), f).toBe(true);
  }, 300_000);

  it("a claim file that is not gradelab's, and live claims of other settings, are one line and exit 2", () => {
    const out = join(dir, 'foreign');
    const first = spawnSync(process.execPath, [bin, ...tile(out)], { encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
    const claims = join(out, 'claims');
    mkdirSync(claims, { recursive: true });
    const now = new Date().toISOString();
    const cases = [
      ['p0000.claim', 'not json', /claims\/p0000\.claim: not a gradelab claim file/],
      [
        'p0001.claim',
        JSON.stringify({ run: 'tile 0123456789abcdef', host: hostname(), pid: process.pid, started: now, heartbeat: now }),
        /pid \d+ is working on this folder with other settings or another command \(tile 0123456789abcdef\)/,
      ],
    ] as const;
    for (const [name, text, message] of cases) {
      writeFileSync(join(claims, name), text);
      const r = spawnSync(process.execPath, [bin, ...tile(out)], { encoding: 'utf8' });
      expect(r.status, name).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      rmSync(join(claims, name));
    }
  });
});
