import { readDatasetTile, TileReader, type TileDataset, type TileRow } from '../data/index.ts';
import { QUALITY_DIM, qualityFeatures } from '../ood/index.ts';

/** Quality features of dataset tiles (n x QUALITY_DIM), tiles read and decoded in chunks. */
export async function datasetQuality(
  ds: TileDataset,
  tiles: readonly TileRow[],
  onProgress?: (done: number) => void,
): Promise<Float32Array> {
  const out = new Float32Array(tiles.length * QUALITY_DIM);
  const reader = new TileReader();
  try {
    for (let i = 0; i < tiles.length; i += 64) {
      const chunk = tiles.slice(i, i + 64);
      const images = await Promise.all(chunk.map((t) => readDatasetTile(ds, t, reader)));
      images.forEach((img, j) => qualityFeatures(img, out.subarray((i + j) * QUALITY_DIM, (i + j + 1) * QUALITY_DIM)));
      onProgress?.(i + chunk.length);
    }
  } finally {
    await reader.close();
  }
  return out;
}
