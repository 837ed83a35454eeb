/**
 * Turns at the engine, first come first served. A photo's attempt is counted when it gets its
 * turn (it is then really inside the engine), so a photo merely waiting in line is never blamed
 * for a crash. Normally two photos are in the engine at once (the engine overlaps one photo's
 * decode with the other's inference). A *suspect* — a photo that was in progress when the process
 * died — takes its turn alone, so a second death is blamed on exactly the photo that caused it
 * and never on a neighbour.
 *
 * Low-priority turns (the operator's full-size renders) never take a photo's place: one is granted
 * only while no photo waits for a turn, and they hold at most `capacity - 1` turns together (one
 * turn when the capacity is one), so a photo that arrives always finds a free turn unless photos
 * fill the engine.
 */
export class EngineTurns {
  private running = 0;
  private lowRunning = 0;
  private aloneRunning = false;
  private readonly line: { alone: boolean; go: () => void }[] = [];
  private readonly lowLine: (() => void)[] = [];

  constructor(private readonly capacity = 2) {}

  /** Resolves when it is this photo's turn, with the function that ends the turn. */
  take(alone: boolean): Promise<() => void> {
    return new Promise((resolve) => {
      this.line.push({ alone, go: () => resolve(this.ender(alone, false)) });
      this.grant();
    });
  }

  /** A low-priority turn: only while no photo waits, and never the engine's last free turn. */
  takeLow(): Promise<() => void> {
    return new Promise((resolve) => {
      this.lowLine.push(() => resolve(this.ender(false, true)));
      this.grant();
    });
  }

  /** Turns waiting now: photos, low-priority. */
  get waiting(): { photos: number; low: number } {
    return { photos: this.line.length, low: this.lowLine.length };
  }

  private ender(alone: boolean, low: boolean): () => void {
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.running--;
      if (low) this.lowRunning--;
      if (alone) this.aloneRunning = false;
      this.grant();
    };
  }

  private grant(): void {
    while (this.line.length > 0 && !this.aloneRunning) {
      const next = this.line[0]!;
      if (next.alone ? this.running > 0 : this.running >= this.capacity) return;
      this.line.shift();
      this.running++;
      if (next.alone) this.aloneRunning = true;
      next.go();
    }
    const lowLimit = Math.max(1, this.capacity - 1);
    while (
      this.line.length === 0 &&
      this.lowLine.length > 0 &&
      !this.aloneRunning &&
      this.running < this.capacity &&
      this.lowRunning < lowLimit
    ) {
      this.running++;
      this.lowRunning++;
      this.lowLine.shift()!();
    }
  }
}
