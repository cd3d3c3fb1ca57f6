import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRng } from '../src/core/index.ts';
import { openSlide } from '../src/data/index.ts';
import { cached, exists, fmt, hasPython, header } from './common.ts';
import { writeBenchSlide } from './slideContent.ts';

/**
 * Random 256x256 level-0 regions from a 6144x5120-class JPEG pyramidal TIFF: gradelab's reader against
 * OpenSlide (Debian python3-openslide) on the same file and the same coordinates, in the same run.
 * Two access patterns: uniform random (few cache hits) and a sliding window (neighbouring reads
 * share tiles, as in tiling and in a viewer).
 */
export async function benchRegions(): Promise<void> {
  header('Random 256x256 level-0 region reads (JPEG pyramidal TIFF, 6144x6144)');
  const path = cached('regions-6144.tiff');
  if (!exists(path)) await writeBenchSlide(path, 6144, 4, 0.5);
  const n = 2000;
  const rng = createRng('bench-regions');
  const random = Array.from({ length: n }, () => [rng.int(6144 - 256), rng.int(6144 - 256)]);
  const sliding = Array.from({ length: n }, (_, i) => [(i * 128) % (6144 - 256), Math.floor((i * 128) / (6144 - 256)) * 128]);
  const coordsPath = cached('regions-coords.json');
  writeFileSync(coordsPath, JSON.stringify({ random, sliding }));

  const ours: Record<string, number> = {};
  for (const [name, coords] of Object.entries({ random, sliding })) {
    // Sequential reads, as OpenSlide's Python API does them; then with 4 reads in flight.
    for (const inflight of [1, 4]) {
      const slide = await openSlide(path);
      const t0 = performance.now();
      for (let i = 0; i < coords.length; i += inflight) {
        await Promise.all(coords.slice(i, i + inflight).map(([x, y]) => slide.readRegion(0, x, y, 256, 256)));
      }
      ours[`${name}/${inflight}`] = coords.length / ((performance.now() - t0) / 1000);
      await slide.close();
    }
  }
  let reference: Record<string, number> | undefined;
  if (hasPython('openslide')) {
    const script = `
import json, sys, time, openslide
c = json.load(open(sys.argv[2]))
out = {}
for name in ('random', 'sliding'):
    s = openslide.OpenSlide(sys.argv[1])
    t0 = time.perf_counter()
    for x, y in c[name]:
        s.read_region((x, y), 0, (256, 256))
    out[name] = len(c[name]) / (time.perf_counter() - t0)
    s.close()
print(json.dumps(out))`;
    reference = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, path, coordsPath], { encoding: 'utf8' }));
  }
  for (const name of ['random', 'sliding']) {
    const ref = reference?.[name];
    const line =
      `${name.padEnd(8)} gradelab ${fmt(ours[`${name}/1`])} regions/s (4 in flight: ${fmt(ours[`${name}/4`])})` +
      (ref
        ? ` | OpenSlide ${fmt(ref)} regions/s | ratio ${fmt(ours[`${name}/1`] / ref, 2)}x sequential, ${fmt(ours[`${name}/4`] / ref, 2)}x with 4 in flight`
        : ' | OpenSlide not installed (apt-get install python3-openslide)');
    process.stdout.write(`${line}\n`);
  }
}
