/** Learning rate at a step: linear warm-up, then cosine decay to zero. */
export function scheduledLr(base: number, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps;
  const t = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return base * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t)));
}
