import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradeColour, loadHeatmap, mergeTiles, referralPriority, toAsapXml, toGeoJson, type SlideHeatmap } from '../../src/view/index.ts';
import { slideInfo, tilesScript } from '../../src/view/page.ts';
import { tempDir } from '../helpers.ts';
import { slideWithHeatmap } from './helpers.ts';

const dir = tempDir();
let heatmap: SlideHeatmap;
let close: () => Promise<void>;

beforeAll(async () => {
  const made = await slideWithHeatmap(dir);
  heatmap = made.heatmap;
  close = () => made.slide.close();
});
afterAll(() => close?.());

describe('heatmaps', () => {
  it('paints each tile over its footprint at thumbnail resolution, transparent elsewhere', async () => {
    const { data, info } = await sharp(join(dir, 'heatmaps', heatmap.slide.id, 'grade.png'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([250, 175, 4]);
    const at = (x: number, y: number) => Array.from(data.subarray((y * 250 + x) * 4, (y * 250 + x) * 4 + 4));
    // Tile 4 (grade 4) covers level-0 (300..500, 300..500): thumbnail (75..125, 75..125) at downsample 4.
    expect(at(100, 100)).toEqual([...gradeColour(4, 6), 255]);
    expect(at(10, 10)).toEqual([0, 0, 0, 0]);
    const ood = await sharp(join(dir, 'heatmaps', heatmap.slide.id, 'ood.png'))
      .raw()
      .toBuffer();
    // The flagged tile (grade 5 at 500..700, 300..500) is magenta.
    expect(Array.from(ood.subarray((100 * 250 + 150) * 4, (100 * 250 + 150) * 4 + 4))).toEqual([230, 0, 230, 255]);
    expect(loadHeatmap(join(dir, 'heatmaps', heatmap.slide.id)).tiles).toHaveLength(6);
  });

  it('refers discordant slides first, then OOD-flagged ones, then the uncertain', () => {
    const discordant = referralPriority(1, 3, false, 0.1);
    const ood = referralPriority(2, 2, true, 0.2);
    const unsure = referralPriority(2, 2, false, 0.7);
    const sure = referralPriority(2, null, false, 0.1);
    // A slide with no scorable tile comes before the most discordant, flagged, unsure one (5 grades off).
    const unscored = referralPriority(null, 0, null, 1);
    const worst = referralPriority(5, 0, true, 1);
    expect([unscored, worst, discordant, ood, unsure, sure]).toEqual(
      [...[unscored, worst, discordant, ood, unsure, sure]].sort((a, b) => b - a),
    );
    expect(unscored).toBeGreaterThan(worst);
  });

  it('merges tiles of a class into non-overlapping rectangles of the same area', () => {
    const span = 10;
    const cells = [
      [0, 0],
      [10, 0],
      [20, 0],
      [0, 10],
      [10, 10],
      [20, 10],
      [40, 10],
      [0, 30],
    ];
    const tiles = cells.map(([x, y]) => ({ x, y, probs: [1], pred: 0, expected: 0, ood: null, oodFlag: null, attention: null }));
    const rects = mergeTiles(tiles, span);
    expect(rects).toHaveLength(3);
    expect(rects.reduce((a, r) => a + (r.x1 - r.x0) * (r.y1 - r.y0), 0)).toBe(cells.length * span * span);
    expect(rects).toContainEqual({ x0: 0, x1: 30, y0: 0, y1: 20 });
  });

  it('GeoJSON validates against the GeoJSON schema and carries what QuPath reads', () => {
    const require = createRequire(import.meta.url);
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(require('geojson-schema/FeatureCollection.json'));
    for (const mode of ['regions', 'tiles'] as const) {
      const fc = toGeoJson(heatmap, mode) as { features: any[] };
      expect(validate(fc), JSON.stringify(validate.errors)).toBe(true);
      for (const f of fc.features) {
        expect(['annotation', 'detection']).toContain(f.properties.objectType);
        expect(f.properties.classification.name).toMatch(/^(tile score toward ISUP \d|Out of distribution)$/);
        expect(f.properties.classification.color).toHaveLength(3);
      }
    }
    const regions = toGeoJson(heatmap, 'regions') as { features: any[] };
    // Six grades, one tile each, and one OOD annotation.
    expect(regions.features.map((f) => f.properties.classification.name)).toEqual([
      'tile score toward ISUP 0',
      'tile score toward ISUP 1',
      'tile score toward ISUP 2',
      'tile score toward ISUP 3',
      'tile score toward ISUP 4',
      'tile score toward ISUP 5',
      'Out of distribution',
    ]);
    const tiles = toGeoJson(heatmap, 'tiles') as { features: any[] };
    expect(tiles.features[2].properties.measurements['P(ISUP 2)']).toBe(0.75);
    expect(tiles.features[2].geometry.coordinates[0][0]).toEqual([500, 100]);
  });

  it('ASAP XML holds one polygon per region in groups named and coloured by grade', () => {
    const xml = toAsapXml(heatmap);
    expect(xml.match(/<Annotation /g)).toHaveLength(7);
    expect(xml).toContain('<Group Name="tile score toward ISUP 4" PartOfGroup="None" Color="#dc3228">');
    expect(xml).toMatch(
      /<Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="tile score toward ISUP 0" Color="#2ea043">\s*<Coordinates>\s*<Coordinate Order="0" X="100" Y="100" \/>/,
    );
    expect(readFileSync(join(dir, 'heatmaps', heatmap.slide.id, 'heatmap.json'), 'utf8')).toContain('"format":"gradelab-heatmap/1"');
  });

  it("a pattern model's tiles are Gleason patterns in every export, and its slide carries the pattern areas", () => {
    // The same six tiles scored by a pattern head: probabilities in the ISUP classes of benign, 3, 4, 5.
    const patterns: SlideHeatmap = {
      ...heatmap,
      model: { ...heatmap.model, head: 'patterns' },
      tiles: heatmap.tiles.map((t, i) => {
        const c = [0, 1, 4, 5][i % 4];
        const probs = [0, 0, 0, 0, 0, 0];
        probs[c] = 0.7;
        probs[c === 0 ? 1 : 0] = 0.3;
        return { ...t, probs, pred: c };
      }),
      slidePrediction: { ...heatmap.slidePrediction!, gleason: '3+4', patterns: { benign: 0.5, g3: 0.25, g4: 0.2, g5: 0.05 } },
    };
    const regions = toGeoJson(patterns, 'regions') as { features: any[] };
    expect(regions.features.map((f) => [f.properties.classification.name, f.properties.measurements.Tiles])).toEqual([
      ['benign', 2],
      ['Gleason pattern 3', 2],
      ['Gleason pattern 4', 1],
      ['Gleason pattern 5', 1],
      ['Out of distribution', 1],
    ]);
    const tiles = toGeoJson(patterns, 'tiles') as { features: any[] };
    expect(tiles.features[2].properties.measurements).toMatchObject({ 'P(Gleason pattern 4)': 0.7, 'P(benign)': 0.3 });
    expect(toAsapXml(patterns)).toContain('<Group Name="Gleason pattern 5" PartOfGroup="None" Color="#aa192d">');
    const info = slideInfo(0, 's', { width: 1000, height: 700 }, 'jpeg', patterns);
    expect(info.legend.map((l) => l.label)).toEqual(['benign', 'Gleason pattern 3', 'Gleason pattern 4', 'Gleason pattern 5']);
    expect(info.summary!.patterns).toBe('Gleason 3+4: benign 50%, pattern 3 25%, 4 20%, 5 5%');
    // The viewer's tile details list the four patterns with the tile's probability of each.
    const data = JSON.parse(/GRADELAB_TILES\[0\] = (.*);\n$/.exec(tilesScript(0, patterns))![1]);
    expect(data.classes).toEqual(['benign', 'Gleason pattern 3', 'Gleason pattern 4', 'Gleason pattern 5']);
    expect(data.tiles[2].slice(2, 4)).toEqual([[0.3, 0, 0.7, 0], 2]);
  });
});
