import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/core/index.ts';
import { filesUnder, missingTool, runCli, tempDir } from '../helpers.ts';

// A real full disk: a tmpfs mounted small enough that tiling fills it mid-slide, then grown with
// remount (its files kept), as an administrator frees space. Mounting needs root, which CI has.
const dir = tempDir();
const disk = join(dir, 'disk');
const mount = (...args: string[]) => spawnSync('mount', args, { encoding: 'utf8' });
let mounted = false;

beforeAll(() => {
  mkdirSync(disk);
  mounted = mount('-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk).status === 0;
});
afterAll(() => {
  if (mounted) spawnSync('umount', [disk]);
});

describe('a disk that fills mid-slide', () => {
  it.skipIf(missingTool(process.getuid?.() === 0))(
    'tiling stops with one line naming the file, leaves a dataset marked unfinished, and the rerun finishes it byte for byte',
    async () => {
      expect(mounted, 'mount -t tmpfs failed (the test needs root)').toBe(true);
      const synth = await runCli([
        'synth',
        '--task',
        'prostate',
        '--slides',
        '4',
        '--size',
        '768',
        '--anomalies',
        '0',
        '--seed',
        '3',
        '--workers',
        '1',
        '--out',
        join(dir, 'slides'),
      ]);
      expect(synth.code, synth.stderr).toBe(0);
      const tile = (out: string) =>
        runCli([
          'tile',
          '--manifest',
          join(dir, 'slides', 'manifest.csv'),
          '--out',
          out,
          '--tile-size',
          '64',
          '--mpp',
          '1',
          '--stride',
          '32',
        ]);
      const ref = join(dir, 'ref');
      expect((await tile(ref)).code).toBe(0);
      const reference = filesUnder(ref);
      const bytes = [...reference.values()].reduce((s, b) => s + b.length, 0);
      // Half the finished dataset's bytes: the disk fills on a slide's shard, with slides done before it.
      expect(mount('-o', `remount,size=${Math.floor(bytes / 2 / 4096) * 4096}`, disk).status).toBe(0);
      const out = join(disk, 'ds');
      const full = await tile(out);
      expect(full.code).toBe(2);
      expect(full.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(`^gradelab: cannot write ${out}/(shards/p\\d{4}\\.bin|tiles\\.csv): no space left on the device$`),
        ),
      ]);
      // Nothing that looks finished: the dataset says so, and every command that reads it refuses it.
      expect(JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')).complete).toBe(false);
      expect(existsSync(join(out, 'tiles.parquet'))).toBe(false);
      const info = await runCli(['dataset', 'info', out]);
      expect([info.code, info.stderr.trim()]).toEqual([
        2,
        `gradelab: ${out}: tiling did not finish; run the same \`gradelab tile\` command again to resume`,
      ]);
      const done = readdirSync(join(out, 'rows')).length;
      expect(done).toBeLessThan(4);
      // A whole-file write names the file, not the temporary one it was being written under, and
      // leaves neither behind.
      const atomic = join(disk, 'report.json');
      await expect(writeFileAtomic(atomic, new Uint8Array(bytes))).rejects.toMatchObject({ code: 'ENOSPC', path: atomic });
      expect(readdirSync(disk).filter((f) => f.includes('report'))).toEqual([]);
      // Space freed: the same command resumes and writes what one uninterrupted run writes.
      expect(mount('-o', 'remount,size=4m', disk).status).toBe(0);
      const rerun = await tile(out);
      expect(rerun.code, rerun.stderr).toBe(0);
      const resumed = filesUnder(out);
      expect([...resumed.keys()].sort()).toEqual([...reference.keys()].sort());
      for (const [name, content] of reference) {
        if (name === 'dataset.json') {
          // The manifest path is relative to the dataset folder, which sits deeper here.
          const strip = (b: Buffer) => ({ ...JSON.parse(b.toString('utf8')), manifest: undefined });
          expect(strip(resumed.get(name)!), name).toEqual(strip(content));
        } else expect(resumed.get(name)!.equals(content), name).toBe(true);
      }
    },
  );
});
