/**
 * Source taps for bilinear sampling along one axis with pixel centres aligned (as libvips and
 * PIL do): target pixel i reads source pixels `lower[i]` and `upper[i]`, weighted by `weight[i]`
 * towards the upper one. The one definition for the compose loop, the mask arithmetic of the
 * quality pipeline and the quality benchmark.
 */
export function bilinearTaps(sourceSize: number, targetSize: number) {
  const lower = new Int32Array(targetSize);
  const upper = new Int32Array(targetSize);
  const weight = new Float32Array(targetSize);
  const scale = sourceSize / targetSize;
  for (let i = 0; i < targetSize; i++) {
    const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), sourceSize - 1);
    const index = Math.floor(position);
    lower[i] = index;
    upper[i] = Math.min(index + 1, sourceSize - 1);
    weight[i] = position - index;
  }
  return { lower, upper, weight };
}
