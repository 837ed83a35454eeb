import * as ort from 'onnxruntime-node';

/**
 * The one way a model session is created, shared by the engine's worker and the benchmark's
 * bare-inference baseline so both measure the same configuration.
 */
export function createSession(modelPath: string, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Measured on u2netp (bench/results): with memory patterns on, the CPU arena grows to ~500 MB
    // over a few runs (RSS ~800 MB in a long-running relay); off, it settles near ~300 MB for ~5 %
    // slower inference. A relay runs all day on a laptop, so memory wins.
    enableMemPattern: false,
    enableCpuMemArena: true,
    logSeverityLevel: 3,
    // Spinning threads would steal the cores libvips needs for the photo's other decode.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}
