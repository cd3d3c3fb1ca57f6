import { LRUCache } from 'lru-cache';

/**
 * Decoded tiles kept in memory, bounded in bytes (not in count: tiles of different levels and formats
 * differ in size). Concurrent requests for the same tile share one decode.
 */
export class TileCache {
  private readonly cache: LRUCache<string, Uint8Array>;
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {
    this.cache = new LRUCache<string, Uint8Array>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (v) => Math.max(1, v.byteLength),
    });
  }

  async get(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const cached = this.cache.get(key);
    if (cached) {
      this.hits++;
      return cached;
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.misses++;
    const p = load().then(
      (v) => {
        this.inFlight.delete(key);
        if (v.byteLength <= this.maxBytes) this.cache.set(key, v);
        return v;
      },
      (err) => {
        this.inFlight.delete(key);
        throw err;
      },
    );
    this.inFlight.set(key, p);
    return p;
  }

  get bytes(): number {
    return this.cache.calculatedSize ?? 0;
  }

  clear(): void {
    this.cache.clear();
  }
}

/** 64 MiB: about a thousand 256x256 RGB tiles, enough for a sliding window over a slide's rows. */
export const DEFAULT_TILE_CACHE_BYTES = 64 * 1024 * 1024;
