/** The inference engines, by name: a module of its own so a command's flags load no engine. */
export const ENGINES = ['auto', 'onnx', 'tfjs'] as const;
export type EngineName = (typeof ENGINES)[number];
