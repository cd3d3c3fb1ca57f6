import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClaimBoard } from '../../src/core/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir();
const deadPid = () => spawnSync('true').pid!;
const owner = (over: object) =>
  JSON.stringify({
    run: 'r',
    host: hostname(),
    pid: process.pid,
    started: new Date().toISOString(),
    heartbeat: new Date().toISOString(),
    ...over,
  });

describe('claims', () => {
  it('one claim per unit: a second claimant is refused until the first releases', () => {
    const board = new ClaimBoard(join(dir, 'a'), { run: 'r' });
    const c = board.tryClaim('s1')!;
    expect(c).toBeDefined();
    // The same process asking again is a second worker in it: refused too.
    expect(board.tryClaim('s1')).toBeUndefined();
    const o = JSON.parse(readFileSync(board.path('s1'), 'utf8'));
    expect([o.run, o.host, o.pid]).toEqual(['r', hostname(), process.pid]);
    c.release();
    expect(board.read('s1')).toBeUndefined();
    expect(board.tryClaim('s1')).toBeDefined();
  });

  it("a dead process's claim on this host is taken over at once; another host's only when its heartbeat is stale", () => {
    const board = new ClaimBoard(join(dir, 'b'), { run: 'r', staleAfterMs: 60_000 });
    writeFileSync(board.path('dead'), owner({ pid: deadPid() }));
    expect(board.isStale(board.read('dead')!)).toBe(true);
    const taken = board.tryClaim('dead')!;
    expect(board.read('dead')!.pid).toBe(process.pid);
    taken.release();
    const minuteAgo = new Date(Date.now() - 61_000).toISOString();
    writeFileSync(board.path('far'), owner({ host: 'elsewhere', pid: 1, heartbeat: minuteAgo }));
    writeFileSync(board.path('near'), owner({ host: 'elsewhere', pid: 1 }));
    expect(board.tryClaim('near')).toBeUndefined();
    expect(board.isStale(board.read('near')!)).toBe(false);
    expect(board.tryClaim('far')).toBeDefined();
  });

  it('of two takers of one stale claim only the first proceeds', () => {
    const a = new ClaimBoard(join(dir, 'c'), { run: 'r' });
    const b = new ClaimBoard(join(dir, 'c'), { run: 'r' });
    writeFileSync(a.path('s'), owner({ host: 'elsewhere', pid: 1, heartbeat: new Date(0).toISOString() }));
    const first = a.tryClaim('s');
    expect(first).toBeDefined();
    // b finds a fresh claim now (this process's, but a different taker): refused.
    expect(b.tryClaim('s')).toBeUndefined();
    first!.release();
  });

  it('the heartbeat moves while the claim is held', async () => {
    const board = new ClaimBoard(join(dir, 'd'), { run: 'r', staleAfterMs: 400, heartbeatMs: 50 });
    const c = board.tryClaim('s')!;
    const before = board.read('s')!.heartbeat;
    // Wait for the heartbeat event itself (not a fixed time): up to 20 s on a loaded machine.
    for (let i = 0; i < 2000 && board.read('s')!.heartbeat === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(board.read('s')!.heartbeat > before).toBe(true);
    c.release();
  });

  it('refuses a folder held live by another run, and ignores a dead one', () => {
    const board = new ClaimBoard(join(dir, 'e'), { run: 'mine' });
    writeFileSync(board.path('x'), owner({ run: 'theirs', pid: deadPid() }));
    expect(() => board.checkRun()).not.toThrow();
    writeFileSync(board.path('y'), owner({ run: 'theirs' }));
    expect(() => board.checkRun()).toThrow(/working on this folder with other settings or another command \(theirs\)/);
  });

  it('a claim is never on disk half-written, and what a killed writer left behind is cleared when the work ends', () => {
    const board = new ClaimBoard(join(dir, 'tmp'), { run: 'r' });
    const c = board.tryClaim('s1')!;
    // Only whole claims under their names: the temporary file a claim was written to is gone.
    expect(readdirSync(board.dir)).toEqual(['s1.claim']);
    c.release();
    // A process SIGKILLed between writing its temporary claim and linking it leaves one behind; a live
    // process's (this one's) is kept, since it is about to be linked.
    const dead = join(board.dir, `.s2.claim.${deadPid()}.0a1b2c3d.tmp`);
    const live = join(board.dir, `.s3.claim.${process.pid}.0a1b2c3d.tmp`);
    writeFileSync(dead, owner({}));
    writeFileSync(live, owner({}));
    board.removeIfEmpty();
    expect([existsSync(dead), existsSync(live)]).toEqual([false, true]);
    writeFileSync(live, '');
    new ClaimBoard(board.dir, { run: 'r', staleAfterMs: -1 }).removeIfEmpty();
    expect(existsSync(board.dir)).toBe(false);
  });
});
