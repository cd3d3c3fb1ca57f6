import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ShardReader } from '../../src/data/index.ts';
import { tempDir } from '../helpers.ts';

const openFds = () => readdirSync('/proc/self/fd').length;

describe('ShardReader', () => {
  it('reads right under heavy concurrency with few handles, and leaves none open', async () => {
    const dir = tempDir();
    const files = Array.from({ length: 20 }, (_, f) => {
      const p = join(dir, `s${f}.bin`);
      writeFileSync(
        p,
        Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + f) & 255),
      );
      return p;
    });
    const before = openFds();
    const reader = new ShardReader(3);
    // 400 reads at once over 20 files through at most 3 handles: evictions happen under reads.
    const reads = Array.from({ length: 400 }, (_, i) => ({ f: i % 20, offset: (i * 13) % 900 }));
    const got = await Promise.all(reads.map((r) => reader.read(files[r.f], r.offset, 50)));
    got.forEach((buf, i) => {
      const { f, offset } = reads[i];
      expect(buf[0]).toBe((offset * 7 + f) & 255);
      expect(buf[49]).toBe(((offset + 49) * 7 + f) & 255);
    });
    await reader.close();
    expect(openFds()).toBe(before);
  });

  it("a truncated shard is the dataset's fault: one line naming it", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'short.bin'), new Uint8Array(10));
    const reader = new ShardReader();
    await expect(reader.read(join(dir, 'short.bin'), 5, 20)).rejects.toThrow(
      /short\.bin: short read at byte 5 \(5 of 20 bytes\): the shard is truncated/,
    );
    await reader.close();
  });
});
