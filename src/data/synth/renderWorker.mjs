// Worker-thread entry rendering synthetic slides in parallel. Plain JavaScript so Node can start it
// directly; it registers tsx and then loads the TypeScript renderer (no build step).
import { register } from 'tsx/esm/api';

register();
const { renderSlide } = await import('./writeSlide.ts');

export default async function run({ slide, out, format }) {
  return renderSlide(slide, out, { format });
}
