export {
  writeHeatmap,
  loadHeatmap,
  checkHeatmapFor,
  referralPriority,
  paintOverlay,
  HEATMAP_FILE,
  type SlideHeatmap,
  type HeatmapTile,
  type HeatmapImages,
} from './heatmap.ts';
export { gradeColour, gradeLabel, rampColour, tileClassColour, tileClassName, tileClasses, maskValueColour } from './colours.ts';
export { toGeoJson, toAsapXml, mergeTiles } from './annotations.ts';
export { dziLevels, dziTile, DZI_TILE, type TileFormat } from './dzi.ts';
export { createViewerServer, startViewer, type ViewerSlide } from './server.ts';
export { exportViewer, dziTileCount, readViewerExport } from './export.ts';
export {
  slidesToMap,
  writeHeatmaps,
  checkHeatmapRun,
  type HeatmapRunIdentity,
  type WriteHeatmapsOptions,
  heatmapDirs,
  heatmapTiling,
  type HeatmapSource,
  type HeatmapIndexEntry,
  type HeatmapTilingOptions,
} from './heatmaps.ts';
export {
  heatmapOfSlide,
  type HeatmapSlide,
  type HeatmapModel,
  type HeatmapScorer,
  type HeatmapMil,
  type HeatmapPooling,
  type HeatmapTiles,
} from './slideHeatmap.ts';
export { tileLegendLabel } from './colours.ts';
