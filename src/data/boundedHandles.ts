/**
 * A bounded set of open resources (file handles, open slides) by key. The map entry is made before any
 * await, so concurrent uses of one key share one open (two opens would orphan one, closed only by the
 * garbage collector), and an entry evicted while in use closes after its last user.
 */
export class BoundedHandles<T> {
  private readonly open = new Map<string, { value: Promise<T>; users: number; evicted: boolean }>();

  constructor(
    private readonly maxOpen: number,
    private readonly opener: (key: string) => Promise<T>,
    private readonly closer: (value: T) => Promise<void>,
  ) {}

  /** Runs `fn` with the resource for `key`, opening it (and evicting the oldest) when needed. */
  async use<R>(key: string, fn: (value: T) => Promise<R>): Promise<R> {
    let entry = this.open.get(key);
    if (!entry) {
      if (this.open.size >= this.maxOpen) this.evict(this.open.keys().next().value as string);
      entry = { value: this.opener(key), users: 0, evicted: false };
      this.open.set(key, entry);
      const opened = entry;
      entry.value.catch(() => this.open.get(key) === opened && this.open.delete(key));
    }
    entry.users++;
    try {
      return await fn(await entry.value);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void this.closeQuietly(entry.value);
    }
  }

  private evict(key: string): void {
    const entry = this.open.get(key)!;
    this.open.delete(key);
    entry.evicted = true;
    if (entry.users === 0) void this.closeQuietly(entry.value);
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((e) => this.closeQuietly(e.value)));
  }

  private async closeQuietly(value: Promise<T>): Promise<void> {
    try {
      await this.closer(await value);
    } catch {
      // Already closed, or never opened (the open's own error reached the use that needed it).
    }
  }
}
