import { ConfigError } from '../core/index.ts';

export interface Shard {
  index: number;
  count: number;
}

/** `--shard I/N` (1 <= I <= N): this process does the I-th of N shares of the work. */
export function parseShard(text?: string): Shard | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) throw new ConfigError(`--shard must be I/N with 1 <= I <= N, got "${text}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** The tiles of every N-th slide (slides in sorted order), so a slide is never split between shards. */
export function tilesOfShard<T extends { slideId: string }>(tiles: readonly T[], shard?: Shard): T[] {
  if (!shard) return [...tiles];
  const mine = new Set(shardUnits([...new Set(tiles.map((t) => t.slideId))].sort(), shard));
  return tiles.filter((t) => mine.has(t.slideId));
}

/** The items of a shard: every N-th item from the I-th (1-based), over a fixed order. */
export function shardUnits<T>(units: readonly T[], shard?: Shard): T[] {
  if (!shard) return [...units];
  return units.filter((_, i) => i % shard.count === shard.index - 1);
}
