/**
 * Turns at the engine, first come first served. A photo's attempt is counted when it gets its
 * turn (it is then really inside the engine), so a photo merely waiting in line is never blamed
 * for a crash. Normally two photos are in the engine at once (the engine overlaps one photo's
 * decode with the other's inference). A *suspect* — a photo that was in progress when the process
 * died — takes its turn alone, so a second death is blamed on exactly the photo that caused it
 * and never on a neighbour.
 */
export class EngineTurns {
  private running = 0;
  private aloneRunning = false;
  private readonly line: { alone: boolean; go: () => void }[] = [];

  constructor(private readonly capacity = 2) {}

  /** Resolves when it is this photo's turn, with the function that ends the turn. */
  take(alone: boolean): Promise<() => void> {
    return new Promise((resolve) => {
      this.line.push({
        alone,
        go: () => {
          let ended = false;
          resolve(() => {
            if (ended) return;
            ended = true;
            this.running--;
            if (alone) this.aloneRunning = false;
            this.grant();
          });
        },
      });
      this.grant();
    });
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
  }
}
