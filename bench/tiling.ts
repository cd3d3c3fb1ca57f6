import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cached, exists, fmt, header } from './common.ts';
import { writeBenchSlide } from './slideContent.ts';

/** Tiling a 50,000 x 50,000 slide through the CLI in a child process: tiles/s and the child's peak RSS. */
export async function benchTiling(side = 50_000): Promise<void> {
  header(`Tiling a ${side} x ${side} JPEG pyramidal TIFF (256 px at 0.5 um/px, min tissue 0.5)`);
  const path = cached(`tiling-${side}.tiff`);
  if (!exists(path)) {
    const t0 = performance.now();
    await writeBenchSlide(path, side, 10, 0.5);
    process.stdout.write(`(made the slide in ${fmt((performance.now() - t0) / 1000)} s)\n`);
  }
  const manifest = cached(`tiling-${side}.csv`);
  writeFileSync(manifest, `path,isup_grade\n${path},3\n`);
  const out = cached(`tiling-${side}-ds`);
  rmSync(out, { recursive: true, force: true });
  const bin = fileURLToPath(new URL('../bin/gradelab.mjs', import.meta.url));
  const script = `
    const { main } = await import(${JSON.stringify(new URL('../src/cli/main.ts', import.meta.url).href)});
    const t0 = performance.now();
    const code = await main(['tile', '--manifest', ${JSON.stringify(manifest)}, '--out', ${JSON.stringify(out)}, '--tile-size', '256', '--mpp', '0.5']);
    const secs = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ code, secs, maxRssKb: process.resourceUsage().maxRSS }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, GRADELAB_LOG: 'info' },
  });
  void bin;
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let res: { code: number; secs: number; maxRssKb: number };
  try {
    res = JSON.parse(last);
  } catch {
    process.stdout.write(`tiling failed: ${r.stderr}\n`);
    return;
  }
  const tiles = Number(/(\d+) tiles from/.exec(r.stderr)?.[1] ?? 0);
  process.stdout.write(
    `${tiles} tiles in ${fmt(res.secs)} s = ${fmt(tiles / res.secs)} tiles/s; peak RSS ${fmt(res.maxRssKb / 1024, 0)} MB (target < 1024 MB)\n`,
  );
}
