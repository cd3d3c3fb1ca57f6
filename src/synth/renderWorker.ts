// Worker-thread entry rendering synthetic slides in parallel (piscina).
import type { SynthSlide } from './design.ts';
import { renderSlide } from './writeSlide.ts';

export default async function run({ slide, out, format }: { slide: SynthSlide; out: string; format?: 'tiff' | 'svs' }): Promise<number> {
  return renderSlide(slide, out, { format });
}
