/**
 * The code tokenizer (js/tokenizer.ts) and both forms of the code embedding
 * (js/code-embedding.ts): form 1 against a float64 reference of attention,
 * residual, layer norm and pooling; form 2 against a float64 reference of
 * the whole pipeline (the hashed table recomputed from its documented
 * formula); and the behaviour the issue asks for, on test files written for
 * the purpose.
 */
import type { ModuleKind } from '../types';
import type { QEModule } from '../js/module';
import {
  BUILTIN_DOCUMENT_FREQUENCIES,
  BUILTIN_DOCUMENTS,
  BUILTIN_WEIGHT_FLOOR,
  embedSource,
  embedTokens,
  FEATURE_TABLE_BYTES_KEPT,
  FEATURE_TABLE_SCALE,
  FEATURE_TABLES_KEPT,
  hashTokenFeatures,
  releaseFeatureTables,
  selectSequence,
  sinusoidalPositions,
  SOURCE_POSITION_SCALE,
} from '../js/code-embedding';
import { hashFeature } from '../js/text-features';
import { detectLanguage, splitIdentifier, tokenizeCode } from '../js/tokenizer';
import { expectThrow, loadModule, MODULE_KINDS } from './helpers';
import { attentionShape, referenceAttention, referenceBm25Idf, referenceCosine as cosine, referenceLayerNorm, uniform } from './reference';

// ------------------------------------------------------------------ test files written for the purpose

const CART = `const { ShoppingCart } = require('../src/cart');

describe('ShoppingCart', () => {
  let cart;

  beforeEach(() => {
    cart = new ShoppingCart({ currency: 'EUR' });
  });

  it('adds items and computes the total with quantities', () => {
    cart.addItem({ sku: 'apple', price: 0.5, quantity: 4 });
    cart.addItem({ sku: 'bread', price: 2.25, quantity: 1 });
    const total = cart.getTotal();
    expect(total).toBeCloseTo(4.25);
    expect(cart.itemCount()).toBe(5);
  });

  it('applies a percentage discount code once', () => {
    cart.addItem({ sku: 'coffee', price: 10, quantity: 2 });
    const applied = cart.applyDiscount('SAVE10');
    expect(applied).toBe(true);
    expect(cart.getTotal()).toBeCloseTo(18);
    expect(cart.applyDiscount('SAVE10')).toBe(false);
  });

  it('removes an item when its quantity drops to zero', () => {
    cart.addItem({ sku: 'tea', price: 3, quantity: 1 });
    cart.updateQuantity('tea', 0);
    expect(cart.isEmpty()).toBe(true);
    expect(() => cart.updateQuantity('tea', 2)).toThrow(/not in cart/);
  });
});
`;

const CART_REFORMATTED = `// Tests for the shopping cart.
const { ShoppingCart } = require( '../src/cart' );

/*
 * Every test starts from an empty cart in euros.
 */
describe( 'ShoppingCart', () => {
    let cart;   // the cart under test

    beforeEach( () => {
        cart = new ShoppingCart( { currency: 'EUR' } );
    } );

    // Totals multiply price by quantity.
    it( 'adds items and computes the total with quantities', () => {
        cart.addItem( { sku: 'apple', price: 0.5, quantity: 4 } );
        cart.addItem( { sku: 'bread', price: 2.25, quantity: 1 } );

        const total = cart.getTotal();   // 4 * 0.5 + 2.25
        expect( total ).toBeCloseTo( 4.25 );
        expect( cart.itemCount() ).toBe( 5 );
    } );

    it( 'applies a percentage discount code once', () => {
        cart.addItem( { sku: 'coffee', price: 10, quantity: 2 } );
        const applied = cart.applyDiscount( 'SAVE10' );
        expect( applied ).toBe( true );
        expect( cart.getTotal() ).toBeCloseTo( 18 );
        // a second use of the same code is refused
        expect( cart.applyDiscount( 'SAVE10' ) ).toBe( false );
    } );

    it( 'removes an item when its quantity drops to zero', () => {
        cart.addItem( { sku: 'tea', price: 3, quantity: 1 } );
        cart.updateQuantity( 'tea', 0 );
        expect( cart.isEmpty() ).toBe( true );
        expect( () => cart.updateQuantity( 'tea', 2 ) ).toThrow( /not in cart/ );
    } );
} );
`;

const CART_RENAMED = `const { ShoppingCart } = require('../src/cart');

describe('ShoppingCart', () => {
  let basket;

  beforeEach(() => {
    basket = new ShoppingCart({ currency: 'EUR' });
  });

  it('adds items and computes the total with quantities', () => {
    basket.addItem({ sku: 'apple', price: 0.5, quantity: 4 });
    basket.addItem({ sku: 'bread', price: 2.25, quantity: 1 });
    const sum = basket.getTotal();
    expect(sum).toBeCloseTo(4.25);
    expect(basket.itemCount()).toBe(5);
  });

  it('applies a percentage discount code once', () => {
    basket.addItem({ sku: 'coffee', price: 10, quantity: 2 });
    const accepted = basket.applyDiscount('SAVE10');
    expect(accepted).toBe(true);
    expect(basket.getTotal()).toBeCloseTo(18);
    expect(basket.applyDiscount('SAVE10')).toBe(false);
  });

  it('removes an item when its quantity drops to zero', () => {
    basket.addItem({ sku: 'tea', price: 3, quantity: 1 });
    basket.updateQuantity('tea', 0);
    expect(basket.isEmpty()).toBe(true);
    expect(() => basket.updateQuantity('tea', 2)).toThrow(/not in cart/);
  });
});
`;

const DURATION = `import { formatDuration, parseIsoDate } from '../lib/time';
import { jest } from '@jest/globals';

describe('time helpers', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  test('formats durations under a minute in seconds', () => {
    expect(formatDuration(0)).toEqual('0s');
    expect(formatDuration(1500)).toEqual('1.5s');
    expect(formatDuration(59999)).toEqual('59.9s');
  });

  test('formats long durations in hours and minutes', () => {
    const twoHours = 2 * 60 * 60 * 1000;
    expect(formatDuration(twoHours + 90_000)).toEqual('2h 1m');
  });

  test('parses ISO dates with a timezone offset', () => {
    const date = parseIsoDate('2024-03-01T12:30:00+02:00');
    expect(date.getUTCHours()).toEqual(10);
    expect(date.getUTCMinutes()).toEqual(30);
    expect(() => parseIsoDate('yesterday')).toThrow(RangeError);
  });

  test('uses the fake clock for relative dates', () => {
    jest.useFakeTimers().setSystemTime(new Date('2024-01-01T00:00:00Z'));
    expect(parseIsoDate('today').toISOString()).toMatch(/^2024-01-01/);
  });
});
`;

const HTTP_RETRY = `const nock = require('nock');
const { fetchWithRetry } = require('../src/http/retry');

describe('fetchWithRetry', () => {
  afterEach(() => nock.cleanAll());

  it('retries a 503 response and then succeeds', async () => {
    const scope = nock('https://api.example.com')
      .get('/users/42').reply(503)
      .get('/users/42').reply(200, { id: 42, name: 'Ada' });
    const response = await fetchWithRetry('https://api.example.com/users/42', { retries: 2, backoffMs: 1 });
    expect(response.status).toEqual(200);
    expect(await response.json()).toEqual({ id: 42, name: 'Ada' });
    expect(scope.isDone()).toBeTruthy();
  });

  it('gives up after the last attempt', async () => {
    nock('https://api.example.com').get('/health').times(3).reply(500);
    await expect(fetchWithRetry('https://api.example.com/health', { retries: 2, backoffMs: 1 }))
      .rejects.toThrow('HTTP 500 after 3 attempts');
  });
});
`;

const PY_PARSER = `import pytest

from config.parser import parse_config, ConfigError


@pytest.fixture
def sample_file(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text("[server]\\nport = 8080\\nhost = localhost\\n")
    return path


def test_parse_reads_sections(sample_file):
    config = parse_config(sample_file)
    assert config["server"]["port"] == 8080
    assert config["server"]["host"] == "localhost"


def test_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        parse_config(tmp_path / "missing.ini")
`;

const JAVA_ACCOUNT = `package com.example.bank;

import static org.junit.jupiter.api.Assertions.*;
import org.junit.jupiter.api.Test;

class AccountTest {
    @Test
    void depositIncreasesBalance() {
        Account account = new Account("alice", 100);
        account.deposit(50);
        assertEquals(150, account.getBalance());
    }

    @Test
    void withdrawMoreThanBalanceFails() {
        Account account = new Account("bob", 20);
        assertThrows(InsufficientFundsException.class, () -> account.withdraw(30));
        assertEquals(20, account.getBalance());
    }
}
`;

const PY_PARSER_RENAMED = `import pytest

from config.parser import parse_config, ConfigError


@pytest.fixture
def ini_path(tmp_path):
    target = tmp_path / "app.ini"
    target.write_text("[server]\\nport = 8080\\nhost = localhost\\n")
    return target


def test_parse_reads_sections(ini_path):
    parsed = parse_config(ini_path)
    assert parsed["server"]["port"] == 8080
    assert parsed["server"]["host"] == "localhost"


def test_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        parse_config(tmp_path / "missing.ini")
`;

const PY_PARSER_REFORMATTED = `import pytest
from config.parser import parse_config, ConfigError

# Fixtures ---------------------------------------------------------------

@pytest.fixture
def sample_file(tmp_path):
    # An ini file with one section.
    path = tmp_path / "app.ini"
    path.write_text( "[server]\\nport = 8080\\nhost = localhost\\n" )
    return path

def test_parse_reads_sections(sample_file):
    config = parse_config(sample_file)      # parses ints
    assert config["server"]["port"]  ==  8080
    assert config["server"]["host"]  ==  "localhost"

def test_missing_file_raises(tmp_path):
    # a missing file is a ConfigError, not an OSError
    with pytest.raises(ConfigError, match="not found"):
        parse_config(tmp_path / "missing.ini")
`;

const JAVA_ACCOUNT_RENAMED = `package com.example.bank;

import static org.junit.jupiter.api.Assertions.*;
import org.junit.jupiter.api.Test;

class AccountTest {
    @Test
    void depositIncreasesBalance() {
        Account acct = new Account("alice", 100);
        acct.deposit(50);
        assertEquals(150, acct.getBalance());
    }

    @Test
    void withdrawMoreThanBalanceFails() {
        Account target = new Account("bob", 20);
        assertThrows(InsufficientFundsException.class, () -> target.withdraw(30));
        assertEquals(20, target.getBalance());
    }
}
`;

const GO_SLUG = `package slug

import "testing"

func TestSlugifyLowercasesAndJoins(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Hello World", "hello-world"},
		{"  spaces  around ", "spaces-around"},
		{"Ünïcödé text", "unicode-text"},
	}
	for _, c := range cases {
		if got := Slugify(c.in); got != c.want {
			t.Errorf("Slugify(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
`;

// ------------------------------------------------------------------ float64 references

/** Form 1 in float64: X = tokens + positions; LayerNorm(X + Attention(X, X, X)); mean; L2-normalize. */
function referenceEmbedTokens(tokens: ArrayLike<number>, positions: ArrayLike<number>, seqLen: number, dim: number, heads: number, weights?: ArrayLike<number>): Float64Array {
  const x = Float64Array.from({ length: seqLen * dim }, (_, i) => tokens[i] + positions[i]);
  const a = referenceAttention(x, x, x, attentionShape({ seqLen, dim, heads }));
  const h = x.map((v, i) => v + a[i]);
  const ones = new Float64Array(dim).fill(1);
  const zeros = new Float64Array(dim);
  const mean = new Float64Array(dim);
  for (let r = 0; r < seqLen; r++) {
    const y = referenceLayerNorm(h.subarray(r * dim, (r + 1) * dim), ones, zeros, 1e-5);
    for (let c = 0; c < dim; c++) mean[c] += (weights === undefined ? 1 : weights[r]) * y[c];
  }
  let n = 0;
  for (let c = 0; c < dim; c++) n += mean[c] * mean[c];
  return mean.map((v) => v / Math.sqrt(n));
}

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The feature table's documented formula (csrc/embed/feature_hash.c), in float32 steps as C does them. */
function referenceTable(rows: number, dim: number, seed: number, scale: number): Float32Array {
  const step = Math.fround(Math.fround(3.4641016151377544) / 16777216);
  const half = Math.fround(1.7320508075688772);
  const seedMix = mix32((seed ^ 0x9e3779b9) >>> 0);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const rowMix = mix32((seedMix ^ mix32((r + 0x85ebca6b) >>> 0)) >>> 0);
    for (let c = 0; c < dim; c++) {
      const h = mix32((rowMix ^ mix32((c ^ 0xc2b2ae35) >>> 0)) >>> 0);
      out[r * dim + c] = Math.fround(scale * Math.fround(Math.fround((h >>> 8) * step) - half));
    }
  }
  return out;
}

const modules = new Map<ModuleKind, QEModule>();
beforeAll(async () => {
  for (const kind of MODULE_KINDS) modules.set(kind, await loadModule(kind));
});
afterAll(() => {
  for (const m of modules.values()) releaseFeatureTables(m);
});
const moduleOf = (kind: ModuleKind): QEModule => modules.get(kind) as QEModule;

// ------------------------------------------------------------------ tokenizer

describe('tokenizeCode', () => {
  const texts = (source: string, language?: 'javascript' | 'python' | 'go' | 'java' | 'typescript') =>
    tokenizeCode(source, { language }).map((t) => t.text);

  it('splits identifiers on snake_case, camelCase, acronyms and digits, lower-cased', () => {
    expect(splitIdentifier('getHTTPResponse_v2')).toEqual(['get', 'http', 'response', 'v', '2']);
    expect(splitIdentifier('__init__')).toEqual(['init']);
    expect(splitIdentifier('XMLHttpRequest')).toEqual(['xml', 'http', 'request']);
    expect(splitIdentifier('userID')).toEqual(['user', 'id']);
    expect(splitIdentifier('MAX_RETRY_COUNT')).toEqual(['max', 'retry', 'count']);
    expect(splitIdentifier('$el')).toEqual(['el']);
  });

  it('drops comments and whitespace, keeps keywords and operators, and replaces literals by their kind', () => {
    const source = "// header\nconst totalPrice = items.reduce((a, b) => a + b.price, 0); /* block\n comment */ if (x === 'a' && y !== `t ${z}`) return /ab+c/gi.test(s) ? 1.5e3 : 0x1F;";
    expect(texts(source, 'javascript')).toEqual([
      'const', 'total', 'price', '=', 'items', '.', 'reduce', '(', '(', 'a', ',', 'b', ')', '=>', 'a', '+', 'b', '.', 'price', ',', '<num>', ')', ';',
      'if', '(', 'x', '===', '<str>', '&&', 'y', '!==', '<str>', ')', 'return', '<regex>', '.', 'test', '(', 's', ')', '?', '<num>', ':', '<num>', ';',
    ]);
    expect(texts('a = b / c / d;', 'javascript')).toEqual(['a', '=', 'b', '/', 'c', '/', 'd', ';']);
  });

  it('handles Python comments, prefixed and triple-quoted strings, and its keywords', () => {
    const source = "def test_it(self):  # note\n    s = f\"x {y}\" + r'''raw\nlines'''\n    assert s is not None // 2\n";
    expect(texts(source, 'python')).toEqual([
      'def', 'test', 'it', '(', 'self', ')', ':', 's', '=', '<str>', '+', '<str>', 'assert', 's', 'is', 'not', 'None', '//', '<num>',
    ]);
  });

  it('handles Go raw strings and :=, and Java annotations and chars', () => {
    expect(texts('func TestX(t *testing.T) { got := f(`raw`) }', 'go')).toEqual([
      'func', 'test', 'x', '(', 't', '*', 'testing', '.', 't', ')', '{', 'got', ':=', 'f', '(', '<str>', ')', '}',
    ]);
    expect(texts("@Test void run() { char c = 'x'; }", 'java')).toEqual([
      '@', 'test', 'void', 'run', '(', ')', '{', 'char', 'c', '=', '<str>', ';', '}',
    ]);
  });

  it('records the line of each token and detects the language', () => {
    const tokens = tokenizeCode('a\n/* two\nlines */ b\n\n"x\\"y"\nc', { language: 'javascript' });
    expect(tokens.map((t) => [t.text, t.line])).toEqual([['a', 1], ['b', 3], ['<str>', 5], ['c', 6]]);
    expect(detectLanguage(PY_PARSER)).toBe('python');
    expect(detectLanguage(JAVA_ACCOUNT)).toBe('java');
    expect(detectLanguage(GO_SLUG)).toBe('go');
    expect(detectLanguage(CART)).toBe('javascript');
    expect(detectLanguage('interface A { b: string }')).toBe('typescript');
  });

  it("records each lexeme's offsets (the whole identifier for each of its parts)", () => {
    const src = 'let fooBar = "x" + 1.5; a >>>= b';
    const tokens = tokenizeCode(src, { language: 'javascript' });
    expect(tokens.map((t) => src.slice(t.start, t.end))).toEqual(['let', 'fooBar', 'fooBar', '=', '"x"', '+', '1.5', ';', 'a', '>>>=', 'b']);
  });

  it('gives the same tokens for a test with its whitespace and comments changed', () => {
    const strip = (s: string) => tokenizeCode(s).map((t) => `${t.kind}:${t.text}`);
    expect(strip(CART_REFORMATTED)).toEqual(strip(CART));
    expect(strip(PY_PARSER_REFORMATTED)).toEqual(strip(PY_PARSER));
  });

  it('rejects what is not a string and unknown languages', () => {
    expectThrow(() => tokenizeCode(42 as unknown as string), TypeError, /source must be a string/);
    expectThrow(() => tokenizeCode('x', { language: 'cobol' as 'go' }), RangeError, /language must be/);
  });
});

// ------------------------------------------------------------------ form 1

describe.each(MODULE_KINDS)('embedTokens (form 1) on the %s build', (kind) => {
  it.each([
    { seqLen: 1, dim: 8, heads: 2 },
    { seqLen: 7, dim: 12, heads: 3 },
    { seqLen: 40, dim: 64, heads: 4 },
    { seqLen: 130, dim: 33, heads: 3 },
  ])('matches the float64 reference: seqLen=$seqLen dim=$dim heads=$heads', ({ seqLen, dim, heads }) => {
    const tokens = uniform(seqLen * dim, seqLen * 7 + dim, -1, 1);
    const got = embedTokens(moduleOf(kind), tokens, dim, { heads });
    const want = referenceEmbedTokens(tokens, sinusoidalPositions(seqLen, dim), seqLen, dim, heads);
    want.forEach((w, i) => expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(2e-5));
    const positions = uniform(seqLen * dim, 99, -0.5, 0.5);
    const got2 = embedTokens(moduleOf(kind), tokens, dim, { heads, positionEmbeddings: positions, blockQ: 3, blockK: 5 });
    const want2 = referenceEmbedTokens(tokens, positions, seqLen, dim, heads);
    want2.forEach((w, i) => expect(Math.abs(got2[i] - w)).toBeLessThanOrEqual(2e-5));
  });

  it('has unit norm and uses sinusoidal positions by default', () => {
    const dim = 16;
    const tokens = uniform(5 * dim, 3);
    const e = embedTokens(moduleOf(kind), tokens, dim, { heads: 2 });
    let n = 0;
    e.forEach((v) => (n += v * v));
    expect(Math.abs(Math.sqrt(n) - 1)).toBeLessThan(1e-6);
    expect(embedTokens(moduleOf(kind), tokens, dim, { heads: 2, positionEmbeddings: sinusoidalPositions(5, dim) })).toEqual(e);
    const f = Math.fround;
    expect(sinusoidalPositions(2, 3)).toEqual(Float32Array.of(0, 1, 0, f(Math.sin(1)), f(Math.cos(1)), f(Math.sin(1 / Math.pow(10000, 2 / 3)))));
  });

  it('rejects bad arguments', () => {
    const m = moduleOf(kind);
    expectThrow(() => embedTokens(m, new Float32Array(10), 4), RangeError, /not a positive multiple of dim 4/);
    expectThrow(() => embedTokens(m, new Float32Array(8), 4, { heads: 3 }), RangeError, /heads must divide dim/);
    expectThrow(() => embedTokens(m, new Float32Array(8), 4, { heads: 2, positionEmbeddings: new Float32Array(4) }), RangeError, /positionEmbeddings has length 4 but seqLen x dim = 2 x 4 = 8/);
    expectThrow(() => embedTokens(m, Float32Array.of(1, NaN, 0, 0), 4, { heads: 1 }), RangeError, /is NaN/);
  });
});

// ------------------------------------------------------------------ form 2

describe.each(MODULE_KINDS)('embedSource (form 2) on the %s build', (kind) => {
  it('fills the feature table exactly by its documented formula', () => {
    const m = moduleOf(kind);
    const rows = 37;
    const dim = 19;
    const got = m.scope((s) => {
      const p = s.allocFloats(rows * dim);
      expect(m.exports.qe_feature_table_fill(p, rows, dim, 12345, FEATURE_TABLE_SCALE)).toBe(0);
      return s.readFloats(p, rows * dim);
    });
    expect(got).toEqual(referenceTable(rows, dim, 12345, FEATURE_TABLE_SCALE));
  });

  it('matches a float64 reference of the whole pipeline', () => {
    const dim = 48;
    const heads = 4;
    const tableRows = 512;
    const seed = 7;
    const got = embedSource(moduleOf(kind), HTTP_RETRY, { dim, heads, tableRows, seed });
    const tokens = tokenizeCode(HTTP_RETRY);
    const sequence = selectSequence(tokens);
    const features = hashTokenFeatures(tokens, tableRows, seed, sequence);
    const table = referenceTable(tableRows, dim, seed, FEATURE_TABLE_SCALE);
    const seqLen = sequence.length;
    const x = new Float64Array(seqLen * dim);
    for (let t = 0; t < seqLen; t++) {
      for (let f = features.offsets[t]; f < features.offsets[t + 1]; f++) {
        for (let c = 0; c < dim; c++) x[t * dim + c] += features.weights[f] * table[features.rows[f] * dim + c];
      }
    }
    const positions = Float64Array.from(sinusoidalPositions(seqLen, dim), (v) => v * SOURCE_POSITION_SCALE);
    // Built-in weighting: each position weighs the BM25 idf of its token's built-in frequency (bucketed as documented), over the largest idf.
    const buckets = 1 << 16;
    const dfOfBucket = new Map<number, number>();
    for (const [text, share] of Object.entries(BUILTIN_DOCUMENT_FREQUENCIES)) {
      const b = hashFeature(`t:${text}`) & (buckets - 1);
      dfOfBucket.set(b, Math.max(dfOfBucket.get(b) ?? 0, Math.round(share * BUILTIN_DOCUMENTS)));
    }
    const top = referenceBm25Idf(0, BUILTIN_DOCUMENTS);
    const weights = sequence.map((i) => 0.5 + 0.5 * referenceBm25Idf(dfOfBucket.get(hashFeature(`t:${tokens[i].text}`) & (buckets - 1)) ?? 0, BUILTIN_DOCUMENTS) / top);
    expect(BUILTIN_WEIGHT_FLOOR).toBe(0.5);
    expect(Math.min(...weights)).toBeLessThan(0.55); // `it`, `(` ... are in the sequence and weigh little
    expect(Math.max(...weights)).toBe(1);
    const want = referenceEmbedTokens(x, positions, seqLen, dim, heads, weights);
    want.forEach((w, i) => expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(5e-5));
    // Uniform weighting is the plain mean.
    const uniformGot = embedSource(moduleOf(kind), HTTP_RETRY, { dim, heads, tableRows, seed, weighting: 'uniform' });
    const uniformWant = referenceEmbedTokens(x, positions, seqLen, dim, heads);
    uniformWant.forEach((w, i) => expect(Math.abs(uniformGot[i] - w)).toBeLessThanOrEqual(5e-5));
  });

  it('keeps only the last few feature tables when many (rows, dim, seed) are used: module memory stays bounded, answers stay the reference\'s', () => {
    const m = moduleOf(kind);
    releaseFeatureTables(m);
    const baseline = { allocations: m.liveAllocations, bytes: m.liveBytes };
    const heads = 2;
    // Uniform pooling: no document-frequency table joins the feature tables in module memory.
    const reference = (dim: number, tableRows: number, seed: number): Float64Array => {
      const tokens = tokenizeCode(HTTP_RETRY);
      const sequence = selectSequence(tokens);
      const features = hashTokenFeatures(tokens, tableRows, seed, sequence);
      const table = referenceTable(tableRows, dim, seed, FEATURE_TABLE_SCALE);
      const x = new Float64Array(sequence.length * dim);
      for (let t = 0; t < sequence.length; t++) {
        for (let f = features.offsets[t]; f < features.offsets[t + 1]; f++) {
          for (let c = 0; c < dim; c++) x[t * dim + c] += features.weights[f] * table[features.rows[f] * dim + c];
        }
      }
      const positions = Float64Array.from(sinusoidalPositions(sequence.length, dim), (v) => v * SOURCE_POSITION_SCALE);
      return referenceEmbedTokens(x, positions, sequence.length, dim, heads);
    };
    const configs = Array.from({ length: 12 }, (_, i) => ({ dim: 6 + 2 * i, tableRows: 61 + 7 * i, seed: 1000 + i }));
    const first = new Map<number, Float32Array>();
    // Tables filled: allocations of a call still live after it (what a call allocates for itself it frees).
    const allocs = jest.spyOn(m, 'alloc');
    const live = (m as unknown as { live: Map<number, number> }).live;
    let fills = 0;
    const tableFills = (): number => fills;
    const embed = (c: { dim: number; tableRows: number; seed: number }): Float32Array => {
      const before = allocs.mock.results.length;
      const got = embedSource(m, HTTP_RETRY, { ...c, heads, weighting: 'uniform' });
      fills += allocs.mock.results.slice(before).filter((r) => live.has(r.value as number)).length;
      return got;
    };
    try {
      configs.forEach((c, i) => {
        const got = embed(c);
        first.set(i, got);
        if (i % 3 === 0) reference(c.dim, c.tableRows, c.seed).forEach((w, j) => expect(Math.abs(got[j] - w)).toBeLessThanOrEqual(5e-5));
        // The table in use and at most FEATURE_TABLES_KEPT - 1 before it.
        expect(m.liveAllocations - baseline.allocations).toBe(Math.min(i + 1, FEATURE_TABLES_KEPT));
        const kept = configs.slice(Math.max(0, i + 1 - FEATURE_TABLES_KEPT), i + 1);
        expect(m.liveBytes - baseline.bytes).toBe(kept.reduce((sum, k) => sum + k.tableRows * k.dim * 4, 0));
      });
      expect(tableFills()).toBe(configs.length);
      // The table in use stays cached: the same (rows, dim, seed) again fills nothing.
      const last = configs[configs.length - 1];
      for (let r = 0; r < 3; r++) expect(embed(last)).toEqual(first.get(configs.length - 1));
      expect(tableFills()).toBe(configs.length);
      // One that was let go is filled again, the same table: the same embedding, bit for bit.
      expect(embed(configs[0])).toEqual(first.get(0));
      expect(tableFills()).toBe(configs.length + 1);
      expect(m.liveAllocations - baseline.allocations).toBe(FEATURE_TABLES_KEPT);
      // Tables beyond FEATURE_TABLE_BYTES_KEPT together are let go even when fewer: the one in use is kept.
      const big = Math.floor(FEATURE_TABLE_BYTES_KEPT / (2 * 64 * 4)) + 1;
      embed({ dim: 64, tableRows: big, seed: 1 });
      embed({ dim: 64, tableRows: big, seed: 2 });
      expect(m.liveBytes - baseline.bytes).toBe(big * 64 * 4);
      expect(m.liveAllocations - baseline.allocations).toBe(1);
    } finally {
      allocs.mockRestore();
      releaseFeatureTables(m);
    }
    expect(m.liveAllocations).toBe(baseline.allocations);
    expect(m.liveBytes).toBe(baseline.bytes);
  });

  it('leaves out punctuation and keeps ceil(sqrt(count)) occurrences of each token', () => {
    const tokens = tokenizeCode('a(a, a); a; b; a . c', { language: 'javascript' });
    // a occurs 5 times: its first 3 stay; b and c once each.
    expect(selectSequence(tokens).map((i) => tokens[i].text)).toEqual(['a', 'a', 'a', 'b', 'c']);
    expect(selectSequence(tokenizeCode('(){};'))).toHaveLength(5);
  });

  it('is deterministic, and the zero vector for a source without tokens', () => {
    const m = moduleOf(kind);
    expect(embedSource(m, CART)).toEqual(embedSource(m, CART));
    expect(embedSource(m, '  // only a comment\n')).toEqual(new Float32Array(512));
    expect(embedSource(m, CART)).toHaveLength(512);
  });

  it('rejects bad options', () => {
    const m = moduleOf(kind);
    expectThrow(() => embedSource(m, 3 as unknown as string), TypeError, /source must be a string/);
    expectThrow(() => embedSource(m, CART, { dim: 0 }), RangeError, /dim must be at least 1/);
    expectThrow(() => embedSource(m, CART, { seed: -1 }), RangeError, /seed must be an integer/);
    expectThrow(() => embedSource(m, CART, { dim: 30, heads: 4 }), RangeError, /heads must divide dim/);
    expectThrow(() => embedSource(m, CART, { weighting: 'idf' as 'uniform' }), RangeError, /weighting must be 'builtin' or 'uniform'/);
  });
});

describe('the code embedding on test files written for the purpose', () => {
  const embedded = new Map<string, Float32Array>();
  const files: Record<string, string> = {
    CART, CART_REFORMATTED, CART_RENAMED, DURATION, HTTP_RETRY, PY_PARSER, PY_PARSER_RENAMED, PY_PARSER_REFORMATTED,
    JAVA_ACCOUNT, JAVA_ACCOUNT_RENAMED, GO_SLUG,
  };
  beforeAll(() => {
    for (const [name, source] of Object.entries(files)) embedded.set(name, embedSource(moduleOf('simd'), source));
  });
  const sim = (a: string, b: string) => cosine(embedded.get(a) as Float32Array, embedded.get(b) as Float32Array);

  it('scores a test with whitespace and comments changed >= 0.95 against the original', () => {
    expect(sim('CART', 'CART_REFORMATTED')).toBeGreaterThanOrEqual(0.95);
    expect(sim('PY_PARSER', 'PY_PARSER_REFORMATTED')).toBeGreaterThanOrEqual(0.95);
  });

  it('scores a test with its local identifiers renamed >= 0.7', () => {
    expect(sim('CART', 'CART_RENAMED')).toBeGreaterThanOrEqual(0.7);
    expect(sim('PY_PARSER', 'PY_PARSER_RENAMED')).toBeGreaterThanOrEqual(0.7);
    expect(sim('JAVA_ACCOUNT', 'JAVA_ACCOUNT_RENAMED')).toBeGreaterThanOrEqual(0.7);
  });

  it('scores two unrelated test files <= 0.5', () => {
    const topics: Record<string, string> = {
      CART: 'cart', CART_RENAMED: 'cart', DURATION: 'time', HTTP_RETRY: 'http', PY_PARSER: 'config',
      PY_PARSER_RENAMED: 'config', JAVA_ACCOUNT: 'bank', JAVA_ACCOUNT_RENAMED: 'bank', GO_SLUG: 'slug',
    };
    const names = Object.keys(topics);
    const over: string[] = [];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        if (topics[names[i]] === topics[names[j]]) continue;
        const s = sim(names[i], names[j]);
        if (s > 0.5) over.push(`${names[i]} vs ${names[j]}: ${s.toFixed(3)}`);
      }
    }
    expect(over).toEqual([]);
  });

  it('gives both builds the same embedding within float rounding', () => {
    const scalar = embedSource(moduleOf('scalar'), CART);
    const simd = embedded.get('CART') as Float32Array;
    simd.forEach((v, i) => expect(Math.abs(v - scalar[i])).toBeLessThanOrEqual(1e-5));
  });
});
