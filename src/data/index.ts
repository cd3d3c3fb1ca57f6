export * from './slide.ts';
export { openSlide, sniffFormat, slideIdFromPath, type OpenSlideOptions, type SlideFormat } from './openSlide.ts';
export { MAX_SLIDE_SIDE } from './tiffSlide.ts';
export { TileCache, DEFAULT_TILE_CACHE_BYTES } from './tileCache.ts';
export { writeTiff, writeSvs, encodeJpeg, imageReader, downsampleImage, type TiffPageSpec, type SvsOptions } from './tiffWriter.ts';
export { spliceJpegTables, splitJpegTables } from './jpegTables.ts';
export { createInMemorySlide, tissueDiscs, type PixelFn, type InMemorySlideOptions } from './syntheticSlide.ts';
export { readThumbnail } from './thumbnail.ts';
export * from './tissue.ts';
export * from './tiling.ts';
export * from './manifest.ts';
export * from './tileDataset.ts';
export { buildTileDataset, finishTileDataset, tileAsWorker, type BuildOptions, type SlideResult, type WorkerPass } from './tileBuilder.ts';
export {
  INDEX_FILE,
  INDEX_FORMAT,
  exportIndex,
  queryRows,
  readIndexRows,
  whereClause,
  indexTable,
  sqlString,
  type TileFilter,
} from './tileIndex.ts';
export * from './splits.ts';
export { TileLoader, type LoaderOptions, type Batch } from './loader.ts';
export type { TransformRef } from './loaderTask.ts';
export { ShardReader, encodeTile, decodeTile, type TileEncoding } from './shards.ts';
export { TileReader, type TileStore, type TileStoreInfo, type StoredTile } from './tileReader.ts';
export { planSlideTiles, storedTileBytes, storedTilePixels, type SlideTiling } from './slideTiles.ts';
export {
  EmbeddingCache,
  embeddingKey,
  embeddingDir,
  tileListSha256,
  type EmbeddingIndex,
  type EmbeddingDtype,
  type EncoderIdentity,
} from './embeddings.ts';
export { floatToHalf, halfToFloat, toHalfBits, fromHalfBits } from './float16.ts';
export { parseShard, tilesOfShard, shardUnits, type Shard } from './shard.ts';
export * from './predictTiles.ts';
export { summariseDataset, patientsOfDataset, type DatasetSummary, type TileCount } from './indexSummary.ts';
export { importPatches, patchFile, type ImportPatchesOptions, type PatchSource } from './patchImport.ts';
export {
  importFeatures,
  importedFeatureSets,
  openImportedFeatures,
  importedEncoder,
  featureFile,
  featureSetName,
  type ImportedFeatures,
} from './featureImport.ts';
export { slideMppOf, mppRange } from './slideMpp.ts';
export * from './labelMasks.ts';
export { maskGrades, describeMaskGrades, type MaskGrade } from './maskGrades.ts';
