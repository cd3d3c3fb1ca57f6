import { ConfigError } from './errors.ts';

/**
 * A name-keyed registry of factories (transforms, models, detectors). Unknown names fail with the list
 * of known ones, so a typo in a YAML file is a clear error rather than a silent default.
 */
export class Registry<T> {
  private readonly entries = new Map<string, T>();

  constructor(readonly kind: string) {}

  register(name: string, entry: T): void {
    if (this.entries.has(name)) throw new Error(`${this.kind} "${name}" is registered twice`);
    this.entries.set(name, entry);
  }

  get(name: string): T {
    const entry = this.entries.get(name);
    if (entry === undefined) {
      throw new ConfigError(`unknown ${this.kind} "${name}"; known: ${this.names().join(', ')}`);
    }
    return entry;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  values(): [string, T][] {
    return this.names().map((n) => [n, this.entries.get(n)!]);
  }
}
