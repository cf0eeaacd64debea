/**
 * Deterministic pseudo-random data (benchmark corpora, the sync simulator): the same seed gives the same bytes on
 * every machine, so a content database generated today is the one measured next month.
 */

/** sfc32: small, fast, and good enough for test data (not for anything secret). */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }

  /** Roughly normal (sum of uniforms), for measurement noise. */
  gauss(): number {
    return this.float() + this.float() + this.float() + this.float() - 2;
  }

  /** Fills `buf` with incompressible bytes. */
  fill(buf: Buffer): void {
    const words = Math.floor(buf.length / 4);
    for (let i = 0; i < words; i++) buf.writeUInt32LE(this.u32(), i * 4);
    for (let i = words * 4; i < buf.length; i++) buf[i] = this.u32() & 0xff;
  }
}

const ONSETS = ['', 'b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'ch', 'cl', 'dr', 'fl', 'gr', 'pl', 'pr', 'sh', 'st', 'th', 'tr'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou', 'ie', 'y'];
const CODAS = ['', '', '', 'n', 'r', 's', 't', 'l', 'm', 'nd', 'st', 'ng', 'rk', 'x'];

/**
 * Text with a natural-language shape: a Zipf-distributed vocabulary of pronounceable words in
 * sentences and paragraphs, so zstd and SQLite see what they would see in real prose.
 */
export class TextGen {
  readonly words: string[] = [];
  /** Quantised inverse CDF: a uniform 20-bit number → word index, for O(1) Zipf sampling. */
  readonly #table = new Uint32Array(1 << 20);

  constructor(
    readonly rng: Rng,
    vocabulary = 30_000,
  ) {
    const seen = new Set<string>();
    while (this.words.length < vocabulary) {
      const syllables = 1 + Math.min(4, Math.floor(-Math.log(1 - rng.float()) * 1.3));
      let w = '';
      for (let s = 0; s < syllables; s++) w += rng.pick(ONSETS) + rng.pick(VOWELS) + rng.pick(CODAS);
      if (w.length < 2 || seen.has(w)) continue;
      seen.add(w);
      this.words.push(w);
    }
    // Short words are the common ones, as in real languages.
    this.words.sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    const weights = this.words.map((_, r) => 1 / (r + 1) ** 1.07);
    const total = weights.reduce((a, b) => a + b, 0);
    let acc = 0;
    let j = 0;
    for (let r = 0; r < weights.length; r++) {
      acc += weights[r]! / total;
      const upto = Math.min(this.#table.length, Math.round(acc * this.#table.length));
      while (j < upto) this.#table[j++] = r;
    }
    while (j < this.#table.length) this.#table[j++] = weights.length - 1;
  }

  word(): string {
    return this.words[this.#table[this.rng.u32() >>> 12]!]!;
  }

  sentence(minWords = 5, maxWords = 22): string {
    const n = this.rng.int(minWords, maxWords);
    const parts: string[] = new Array(n);
    for (let i = 0; i < n; i++) parts[i] = this.word();
    const first = parts[0]!;
    parts[0] = first.charAt(0).toUpperCase() + first.slice(1);
    // Some punctuation inside sentences, as in prose (and commas and quotes exercise CSV quoting).
    if (n > 8 && this.rng.float() < 0.4) parts[this.rng.int(2, n - 3)] += ',';
    if (this.rng.float() < 0.05) {
      const i = this.rng.int(0, n - 1);
      parts[i] = `"${parts[i]}"`;
    }
    return `${parts.join(' ')}${this.rng.float() < 0.1 ? '?' : '.'}`;
  }

  /** About `chars` characters of paragraphs separated by blank lines. */
  prose(chars: number): string {
    const paragraphs: string[] = [];
    let length = 0;
    while (length < chars) {
      const sentences: string[] = [];
      const n = this.rng.int(2, 7);
      for (let i = 0; i < n && length < chars; i++) {
        const s = this.sentence();
        sentences.push(s);
        length += s.length + 1;
      }
      paragraphs.push(sentences.join(' '));
    }
    return paragraphs.join('\n\n');
  }

  title(): string {
    const n = this.rng.int(2, 7);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      const w = this.word();
      parts.push(w.charAt(0).toUpperCase() + w.slice(1));
    }
    return parts.join(' ');
  }
}
