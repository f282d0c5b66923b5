// When to try again after a failed join or media connection: 1, 2, 4 … 30 s apart, each delay
// drawn within ±20 % (jitter), so that pages that cannot connect do not hammer the server, and
// the kiosks of a county whose server just came back do not all return in the same second.
export const FIRST_MS = 1000;
export const MAX_MS = 30000;
const JITTER = 0.2;

export class Backoff {
  constructor(random = Math.random) {
    this.random = random;
    this.failures = 0;
  }

  // One more failure in a row; returns how long to wait before the next attempt.
  fail() {
    this.failures += 1;
    const step = Math.min(MAX_MS, FIRST_MS * 2 ** (this.failures - 1));
    return Math.round(step * (1 - JITTER + 2 * JITTER * this.random()));
  }

  // A connection that held: the next failure starts again from the first delay.
  reset() {
    this.failures = 0;
  }
}
