/**
 * A cap on how many of something the registry does at once (uploads being received and checked):
 * each holds a slot until it gives it back; past the cap the caller refuses with 503 IQP_E_BUSY.
 * Per process, like the memory and disk bandwidth it protects.
 */
export class Slots {
  #used = 0;

  constructor(readonly size: number) {}

  get used(): number {
    return this.#used;
  }

  /** A slot's release function (safe to call more than once), or null when all are taken. */
  take(): (() => void) | null {
    if (this.#used >= this.size) return null;
    this.#used += 1;
    let held = true;
    return () => {
      if (held) {
        held = false;
        this.#used -= 1;
      }
    };
  }
}
