import { createRng } from '../src/core/index.ts';
import { kthNeighbourDistance } from '../src/ood/index.ts';
import { fmt, header } from './common.ts';

/** kNN OOD scoring: queries/s against 100,000 reference features of dimension 512 (exact search). */
export async function benchKnn(): Promise<void> {
  header('kNN OOD scoring: 100,000 reference features x 512 dims, k = 10, exact search');
  const rng = createRng('knn-bench');
  const n = 100_000;
  const d = 512;
  const ref = new Float32Array(n * d);
  for (let i = 0; i < ref.length; i++) ref[i] = rng.normal();
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += ref[i * d + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) ref[i * d + j] *= inv;
  }
  const q = 64;
  const queries = ref.slice(0, q * d);
  kthNeighbourDistance(ref, n, queries.subarray(0, d), 1, d, 10);
  const t0 = performance.now();
  kthNeighbourDistance(ref, n, queries, q, d, 10);
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${fmt(q / secs)} queries/s (${fmt((secs / q) * 1000)} ms per query; ${fmt((n * d * 2 * q) / secs / 1e9, 2)} GFLOP/s), one thread, exact\n`,
  );
}
