/**
 * The finiteness check every input passes through: it must catch NaN and
 * both infinities at any position (the 4-wide body and the tail), name the
 * first bad index, and pass every finite value, extremes included.
 */
import { validateFiniteElements } from '../js/validate';

describe('validateFiniteElements', () => {
  const finiteExtremes = [0, -0, 1.401298464324817e-45, -1.401298464324817e-45, 1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38];

  it('passes finite values, extremes and subnormals included, at every length', () => {
    for (let n = 0; n <= 9; n++) {
      const x = Float32Array.from({ length: n }, (_, i) => finiteExtremes[i % finiteExtremes.length]);
      expect(() => validateFiniteElements('x', x)).not.toThrow();
    }
  });

  it.each([NaN, Infinity, -Infinity])('finds %p at every position of lengths 1 to 9, and in a subarray', (bad) => {
    for (let n = 1; n <= 9; n++) {
      for (let at = 0; at < n; at++) {
        const x = new Float32Array(n).fill(0.5);
        x[at] = bad;
        expect(() => validateFiniteElements('Q', x)).toThrow(new RangeError(`Q[${at}] is ${bad}; every element must be finite`));
      }
    }
    const whole = new Float32Array(20).fill(1);
    whole[13] = bad;
    expect(() => validateFiniteElements('K', whole.subarray(5, 15))).toThrow(`K[8] is ${bad}`);
    expect(() => validateFiniteElements('K', whole.subarray(0, 13))).not.toThrow();
  });
});
