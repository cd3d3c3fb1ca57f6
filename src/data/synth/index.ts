export { generateSynthetic, designSlides, renderSlide, SYNTH_MANIFEST, type SynthOptions, type SynthSlide } from './generate.ts';
export { Scene, ANOMALY_KINDS, NEAR_OOD, FAR_OOD, LABEL, type AnomalyKind, type SlideDesign } from './scene.ts';
export { buildScene, epitheliumAreas, PRIMARY_SHARE } from './layout.ts';
export { renderRegion, type RenderedRegion } from './render.ts';
export { SITES, type SiteProtocol } from './sites.ts';
