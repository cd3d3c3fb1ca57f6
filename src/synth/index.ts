export { generateSynthetic, SYNTH_MANIFEST } from './generate.ts';
export { designSlides, type SynthOptions, type SynthSlide } from './design.ts';
export { renderSlide } from './writeSlide.ts';
export { Scene, ANOMALY_KINDS, NEAR_OOD, FAR_OOD, LABEL, type AnomalyKind, type LookAlikeStains, type SlideDesign } from './scene.ts';
export { buildScene, epitheliumAreas, PRIMARY_SHARE } from './layout.ts';
export { renderRegion, stainConcentrations, type RenderedRegion, type StainConcentrations } from './render.ts';
export { measureStainMatch, QuantileMap, StainMatch } from './stainMatch.ts';
export { SITES, type SiteProtocol } from './sites.ts';
