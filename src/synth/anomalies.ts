import type { Rng } from '../core/index.ts';
import { blobPolygon } from './geometry.ts';
import { fillWithNuclei } from './patches.ts';
import { LABEL, NucleusKind, RegionKind, type AnomalyKind, type Scene } from './scene.ts';

export function regionAnomaly(scene: Scene, kind: AnomalyKind, rng: Rng): void {
  const a = scene.anomalyArea!;
  const u = scene.u;
  const label = LABEL.anomaly;
  if (kind === 'lymphoid') {
    scene.addRegion(a.poly, RegionKind.Lymphoid, label, 0.06, 0.08);
    fillWithNuclei(
      scene,
      a.poly,
      [],
      6.4 * u,
      () => {
        const r = rng.uniform(2.5, 3.0) * u;
        return [r, r * rng.uniform(0.9, 1)];
      },
      () => rng.uniform(1.0, 1.2),
      rng,
      NucleusKind.Lymphocyte,
    );
  } else if (kind === 'mucinous') {
    scene.addRegion(a.poly, RegionKind.Mucin, label, 0.22, 0.07);
    for (let k = 0; k < 60; k++) {
      const ang = rng.uniform(0, 2 * Math.PI);
      const d = Math.sqrt(rng.next()) * a.r * 0.85;
      const cx = a.cx + d * Math.cos(ang);
      const cy = a.cy + d * Math.sin(ang);
      const r = rng.uniform(7, 11) * u;
      // Signet-ring cell: a clear mucin vacuole pushing a crescent nucleus to the rim.
      scene.addRegion(blobPolygon(cx, cy, r, 0.1, rng, 12), RegionKind.Lumen, label);
      const t = rng.uniform(0, 2 * Math.PI);
      scene.addNucleus(
        cx + Math.cos(t) * r * 0.85,
        cy + Math.sin(t) * r * 0.85,
        4.2 * u,
        1.6 * u,
        t + Math.PI / 2,
        1.2,
        NucleusKind.Normal,
      );
    }
  } else {
    // Foreign tissue: skeletal muscle, dense eosinophilic fibres with peripheral elongated nuclei.
    scene.addRegion(a.poly, RegionKind.Muscle, label, 0.03, 0.6);
    for (let k = 0; k < Math.round((a.r / u) ** 2 / 220); k++) {
      const ang = rng.uniform(0, 2 * Math.PI);
      const d = Math.sqrt(rng.next()) * a.r;
      scene.addNucleus(
        a.cx + d * Math.cos(ang),
        a.cy + d * Math.sin(ang),
        rng.uniform(4.5, 6) * u,
        1.6 * u,
        rng.uniform(-0.1, 0.1),
        0.9,
        NucleusKind.Stromal,
      );
    }
  }
}

export function overlayAnomaly(scene: Scene, kind: AnomalyKind, rng: Rng): void {
  const u = scene.u;
  const c = scene.capsules[rng.int(scene.capsules.length)];
  const along = rng.uniform(0.2, 0.8);
  const cx = c.ax + (c.bx - c.ax) * along;
  const cy = c.ay + (c.by - c.ay) * along;
  if (kind === 'pen-mark') {
    const pts: number[] = [];
    const p = [0, 1, 2, 3].map((i) => [cx + rng.uniform(-1, 1) * c.r * 3 + (i - 1.5) * c.r * 1.2, cy + rng.uniform(-1.5, 1.5) * c.r]);
    for (let i = 0; i <= 40; i++) {
      const t = i / 40;
      const w = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3];
      pts.push(
        w.reduce((s, wi, k) => s + wi * p[k][0], 0),
        w.reduce((s, wi, k) => s + wi * p[k][1], 0),
      );
    }
    const inks: [number, number, number][] = [
      [0.25, 0.6, 0.35],
      [0.2, 0.3, 0.75],
      [0.12, 0.12, 0.14],
    ];
    scene.overlays.push({ kind: 'pen', points: Float32Array.from(pts), width: rng.uniform(60, 120) * u, ink: inks[rng.int(inks.length)] });
  } else if (kind === 'air-bubble') {
    for (let k = 0; k < 1 + rng.int(2); k++) {
      scene.overlays.push({
        kind: 'bubble',
        cx: cx + rng.uniform(-1, 1) * c.r,
        cy: cy + rng.uniform(-0.5, 0.5) * c.r,
        r: rng.uniform(0.5, 0.9) * c.r,
      });
    }
  } else if (kind === 'tissue-fold') {
    const ang = rng.uniform(Math.PI / 3, (2 * Math.PI) / 3);
    scene.overlays.push({ kind: 'fold', cx, cy, nx: Math.cos(ang), ny: Math.sin(ang), half: rng.uniform(40, 100) * u });
  } else {
    scene.overlays.push({ kind: 'blur', cx, cy, r: c.r * rng.uniform(0.8, 1.2) });
  }
}
