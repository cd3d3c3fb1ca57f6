/**
 * Aperio SVS metadata lives in the first IFD's ImageDescription:
 *   "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990|..."
 * Associated images carry a second line naming them: "...\r\nlabel 415x422", "...\r\nmacro 1280x421".
 */
export function isAperioDescription(description: string | undefined): boolean {
  return description !== undefined && description.startsWith('Aperio');
}

export function parseAperioDescription(description: string): Record<string, string> {
  const props: Record<string, string> = {};
  const parts = description.split('|');
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    props[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return props;
}

/** "label" or "macro" from an associated image's description, as OpenSlide's aperio driver reads it. */
export function aperioAssociatedName(description: string | undefined): string | undefined {
  if (!description) return undefined;
  const lines = description.split(/\r?\n/);
  const second = lines[1]?.trim().split(/\s+/)[0];
  return second === 'label' || second === 'macro' ? second : undefined;
}

export function positiveNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
