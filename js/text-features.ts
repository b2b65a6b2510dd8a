/**
 * Hashed features of a text, for corpus-aware weighting (js/code-index.ts,
 * csrc/embed/text_weight.c). Pure functions, no module needed.
 *
 * Code (kind 'code'), from the tokens of js/tokenizer.ts, punctuation left out:
 *   - each token (identifier part, keyword, operator, literal kind);
 *   - each whole identifier of two or more parts (`getUserName`, `build4`):
 *     digits and case kept, since they tell template siblings apart;
 *   - each literal's value (`'SPRING10'`, `1999`, a regex), hashed as its own
 *     feature next to its kind: the same magic values are what mark a copy;
 *   - the words inside string literals, so a test's title counts as text;
 *   - the bigram of each token with the one before it.
 * Failures (kind 'failure'), from tokenizeTrace: the exception type (full and
 * simple name), the message's words, each frame as a whole
 * (`pkg.Class.method`, `file.test.js:fn`) and its parts; framework frames
 * weigh a tenth.
 *
 * A feature is a 32-bit hash of a string key whose first letters say what
 * it is (`i:` identifier part, `w:` whole identifier, `v:` literal value ...),
 * so equal text of different roles does not collide on purpose.
 */
import { CODE_LANGUAGES, splitIdentifier, tokenizeCode, type CodeLanguage, type CodeToken } from './tokenizer';
import { tokenizeTrace } from './trace-tokenizer';

export type TextKind = 'code' | 'failure';

/** The features of one text: distinct hashes, their counts, weights and readable labels. */
export interface TextFeatures {
  /** Distinct feature hashes (uint32), in order of first occurrence. */
  hashes: Uint32Array;
  /** Occurrences of each feature in the text. */
  counts: Float32Array;
  /** Weight of each feature's role (the largest when a feature plays several). */
  weights: Float32Array;
  /** What each feature is, for reports (`print`, `'SPRING10'`, `java.lang.IllegalStateException`). */
  labels: string[];
  /**
   * Each feature's part in evidence: 0 not shown (bigrams), 1 shown, 2 shown
   * and counted as distinct evidence when rare (literal values, whole
   * identifiers, exception types, frames: one per thing written, so a rare
   * name does not count once per part).
   */
  evidence: Uint8Array;
}

/** Parts in evidence of a feature (see TextFeatures.evidence). */
export const EVIDENCE_HIDDEN = 0;
export const EVIDENCE_SHOWN = 1;
export const EVIDENCE_DISTINCT = 2;

/** Weights of the roles of a code feature. */
export const CODE_FEATURE_WEIGHTS = {
  identifier: 1.0,
  keyword: 0.5,
  operator: 0.25,
  literalKind: 0.25,
  wholeIdentifier: 1.0,
  literalValue: 1.0,
  stringWord: 0.5,
  bigram: 0.5,
} as const;

/** Weights of the roles of a failure feature; a framework frame's features are multiplied by frameworkFactor. */
export const FAILURE_FEATURE_WEIGHTS = {
  exception: 2.0,
  exceptionSimple: 1.5,
  messageWord: 1.0,
  frame: 1.5,
  framePart: 0.5,
  frameworkFactor: 0.1,
} as const;

/** Hashes of recent keys: the same tokens recur in every text of a corpus. Cleared when full. */
const hashCache = new Map<string, number>();
const HASH_CACHE_SIZE = 1 << 16;

/** 32-bit FNV-1a of the string's UTF-16 code units, then a finalizer so every bit depends on every character. */
export function hashFeature(key: string): number {
  let h = hashCache.get(key);
  if (h === undefined) {
    h = hashKey(key);
    if (hashCache.size >= HASH_CACHE_SIZE) hashCache.clear();
    hashCache.set(key, h);
  }
  return h;
}

function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h >>> 0);
}

/** The 32-bit finalizer of the C side (qe_mix32, csrc/embed/feature_hash.h), so bits spread evenly. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Collects features: counts add up, the weight of a repeated feature is its largest role's. */
class FeatureBag {
  private readonly index = new Map<number, number>();
  readonly hashes: number[] = [];
  readonly counts: number[] = [];
  readonly weights: number[] = [];
  readonly labels: string[] = [];
  readonly evidence: number[] = [];

  add(hash: number, weight: number, label: string, evidence: number): void {
    const at = this.index.get(hash);
    if (at === undefined) {
      this.index.set(hash, this.hashes.length);
      this.hashes.push(hash);
      this.counts.push(1);
      this.weights.push(weight);
      this.labels.push(label);
      this.evidence.push(evidence);
    } else {
      this.counts[at]++;
      if (weight > this.weights[at]) this.weights[at] = weight;
      if (evidence > this.evidence[at]) this.evidence[at] = evidence;
    }
  }

  addKey(key: string, weight: number, label: string, evidence: number): number {
    const h = hashFeature(key);
    this.add(h, weight, label, evidence);
    return h;
  }

  result(): TextFeatures {
    return {
      hashes: Uint32Array.from(this.hashes),
      counts: Float32Array.from(this.counts),
      weights: Float32Array.from(this.weights),
      labels: this.labels,
      evidence: Uint8Array.from(this.evidence),
    };
  }
}

/** The content of a string literal's lexeme: quotes and prefixes (r, b, f ...) removed. */
function literalContent(lexeme: string): string {
  const m = /^[rRbBuUfF]{0,2}("""|'''|"|'|`)([\s\S]*?)\1?$/.exec(lexeme);
  return m === null ? lexeme : m[2];
}

/** Words of a text (letters and digits runs, split like identifiers), lower-cased. */
export function textWords(text: string): string[] {
  const out: string[] = [];
  for (const run of text.match(/[\p{L}\p{N}_]+/gu) ?? []) out.push(...splitIdentifier(run));
  return out;
}

const BIGRAM_SEED = 0x9e3779b1;

/** Features of source code (see the top of this file). */
export function codeFeatures(source: string, language: CodeLanguage | 'auto' = 'auto'): TextFeatures {
  if (language !== 'auto' && !(CODE_LANGUAGES as readonly unknown[]).includes(language)) {
    throw new RangeError(`language must be 'auto' or one of ${CODE_LANGUAGES.join(', ')}, got ${JSON.stringify(language)}`);
  }
  const tokens = tokenizeCode(source, { language });
  const w = CODE_FEATURE_WEIGHTS;
  const bag = new FeatureBag();
  let previous = -1;
  let previousText = '';
  let lastWordStart = -1;
  for (const t of tokens) {
    if (t.kind === 'punctuation') continue;
    // An identifier of one part is a whole name: its token counts as distinct evidence.
    const whole = t.kind === 'identifier' && source.slice(t.start, t.end).toLowerCase() === t.text;
    const h = bag.addKey(`${t.kind[0]}:${t.text}`, tokenWeight(t), t.text, whole ? EVIDENCE_DISTINCT : EVIDENCE_SHOWN);
    if (previous >= 0) {
      bag.add(mix32((Math.imul(previous, BIGRAM_SEED) ^ h) >>> 0), w.bigram, `${previousText} ${t.text}`, EVIDENCE_HIDDEN);
    }
    previous = h;
    previousText = t.text;
    if (t.kind === 'identifier') {
      if (t.start !== lastWordStart) {
        lastWordStart = t.start;
        const word = source.slice(t.start, t.end);
        if (word.toLowerCase() !== t.text) bag.addKey(`w:${word}`, w.wholeIdentifier, word, EVIDENCE_DISTINCT);
      }
    } else if (t.kind === 'string' || t.kind === 'number' || t.kind === 'regex') {
      const lexeme = source.slice(t.start, t.end);
      const value = t.kind === 'number' ? lexeme.replace(/_/g, '').toLowerCase() : t.kind === 'string' ? literalContent(lexeme) : lexeme;
      bag.addKey(`v:${value}`, w.literalValue, t.kind === 'number' ? value : JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value), EVIDENCE_DISTINCT);
      if (t.kind === 'string') for (const word of textWords(value)) bag.addKey(`s:${word}`, w.stringWord, word, EVIDENCE_SHOWN);
    }
  }
  return bag.result();
}

function tokenWeight(t: CodeToken): number {
  const w = CODE_FEATURE_WEIGHTS;
  switch (t.kind) {
    case 'identifier':
      return w.identifier;
    case 'keyword':
      return w.keyword;
    case 'operator':
      return w.operator;
    default:
      return w.literalKind;
  }
}

/** Features of a failure: a stack trace (Java or Node format) with its exception and message (see the top of this file). */
export function failureFeatures(text: string): TextFeatures {
  const w = FAILURE_FEATURE_WEIGHTS;
  const bag = new FeatureBag();
  for (const t of tokenizeTrace(text)) {
    const factor = t.framework ? w.frameworkFactor : 1;
    switch (t.kind) {
      case 'exception':
        bag.addKey(`E:${t.text}`, w.exception * factor, t.text, EVIDENCE_DISTINCT);
        {
          const simple = t.text.slice(t.text.lastIndexOf('.') + 1);
          if (simple !== t.text) bag.addKey(`e:${simple}`, w.exceptionSimple * factor, simple, EVIDENCE_SHOWN);
        }
        break;
      case 'word':
        bag.addKey(`m:${t.text}`, w.messageWord * factor, t.text, EVIDENCE_SHOWN);
        break;
      case 'frame':
        bag.addKey(`F:${t.text}`, w.frame * factor, t.text, t.framework ? EVIDENCE_SHOWN : EVIDENCE_DISTINCT);
        break;
      case 'frame-part':
        bag.addKey(`p:${t.text}`, w.framePart * factor, t.text, EVIDENCE_SHOWN);
        break;
    }
  }
  return bag.result();
}

/** Features of a text of either kind. */
export function textFeatures(text: string, kind: TextKind, language: CodeLanguage | 'auto' = 'auto'): TextFeatures {
  return kind === 'code' ? codeFeatures(text, language) : failureFeatures(text);
}
