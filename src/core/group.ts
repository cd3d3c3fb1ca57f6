/**
 * Groups items by key, keys in first-seen order (a Map keeps insertion order). Arrays are appended in
 * place, so grouping n tiles is linear; rebuilding the array per item was quadratic in tiles per slide.
 */
export function groupBy<T, K, V = T>(
  items: readonly T[],
  key: (item: T, index: number) => K,
  value: (item: T, index: number) => V = (item) => item as unknown as V,
): Map<K, V[]> {
  const groups = new Map<K, V[]>();
  items.forEach((item, i) => {
    const k = key(item, i);
    const group = groups.get(k);
    if (group) group.push(value(item, i));
    else groups.set(k, [value(item, i)]);
  });
  return groups;
}
