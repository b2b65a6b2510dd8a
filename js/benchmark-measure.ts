/**
 * How the benchmark times: engines warmed up, then taking turns in rounds
 * (measureSideBySide), medians with min and max; and the seeded inputs every
 * engine and process shares. Nothing here knows what is timed.
 */

export interface TimingStats {
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  warmupRuns: number;
}

export interface MeasureOptions {
  /** Untimed calls at least (default 5), and at least warmupMs of them (default 300). */
  warmupCalls?: number;
  warmupMs?: number;
  /** Timed calls at least (default 10), and enough to fill about minTimeMs (default 300), at most maxRuns (default 40). */
  minRuns?: number;
  minTimeMs?: number;
  maxRuns?: number;
  /** Rounds of measureSideBySide (default SIDE_BY_SIDE_ROUNDS, at most minRuns). */
  rounds?: number;
}

function median(sorted: number[]): number {
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** An engine set up for one shape, timed in batches (measureSideBySide). */
export interface TimedSession {
  /** Untimed calls: at least `calls` of them, and for at least `ms`. Returns how many ran. */
  warm(calls: number, ms: number): Promise<number>;
  /** `runs` calls, each timed on its own (in the engine's own process); their times in ms. */
  time(runs: number): Promise<number[]>;
}

/** A TimedSession for a function called in this process. */
export function localSession(fn: () => unknown): TimedSession {
  return {
    async warm(calls, ms) {
      let n = 0;
      const start = performance.now();
      // At most 200 calls: a warm-up of slow calls ends on the call count.
      while (n < calls || (performance.now() - start < ms && n < 200)) {
        await fn();
        n++;
      }
      return n;
    },
    async time(runs) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await fn();
        times.push(performance.now() - t0);
      }
      return times;
    },
  };
}

/** Untimed calls, in ms, before each batch of measureSideBySide. */
export const REWARM_MS = 20;

/** How many rounds measureSideBySide splits the timed calls into. */
export const SIDE_BY_SIDE_ROUNDS = 5;

/**
 * The benchmark's rows that compare engines take at least this many timed
 * calls of each, in this many rounds, spread over several seconds: a slow
 * spell of the machine (here they last a second or two, and slow a second
 * core more than the first) then touches a minority of every engine's calls,
 * and the medians stand.
 */
export const COMPARED_RUNS = 60;
export const COMPARED_ROUNDS = 20;

/**
 * Times engines side by side. Each is warmed up first (V8 optimizes wasm and
 * JS only after it has seen them run); then they take turns, a batch of timed
 * calls each per round, so that a slow spell of the machine (another tenant,
 * a clock change) falls on all of them rather than on whichever ran then.
 * Each gets at least minRuns timed calls and, when its calls are quick,
 * enough to fill about minTimeMs (at most maxRuns).
 */
export async function measureSideBySide(sessions: readonly TimedSession[], options: MeasureOptions = {}): Promise<TimingStats[]> {
  const warmupCalls = options.warmupCalls ?? 5;
  const warmupMs = options.warmupMs ?? 300;
  const minRuns = options.minRuns ?? 10;
  const minTimeMs = options.minTimeMs ?? 300;
  const maxRuns = Math.max(minRuns, options.maxRuns ?? 40);
  const rounds = Math.max(1, Math.min(options.rounds ?? SIDE_BY_SIDE_ROUNDS, minRuns));
  const plans: { warmupRuns: number; perCall: number; batch: number; times: number[] }[] = [];
  for (const session of sessions) {
    const start = performance.now();
    const warmupRuns = await session.warm(warmupCalls, warmupMs);
    const perCall = (performance.now() - start) / Math.max(1, warmupRuns);
    const wanted = Math.min(maxRuns, Math.max(minRuns, Math.ceil(minTimeMs / Math.max(perCall, 1e-3))));
    plans.push({ warmupRuns, perCall, batch: Math.ceil(wanted / rounds), times: [] });
  }
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sessions.length; i++) {
      // Untimed calls before each batch, at least one and 20 ms of them (but
      // not for calls of a second or more): caches, thread pools and cores
      // left cold by the engine that ran before are not counted against this
      // one. On this VM a core idle for a few tens of milliseconds wakes
      // slowly, and a 2-thread engine's first calls after one engine on one
      // thread ran at 1-thread speed.
      if (sessions.length > 1 && plans[i].perCall < 1000) await sessions[i].warm(1, REWARM_MS);
      plans[i].times.push(...(await sessions[i].time(plans[i].batch)));
    }
  }
  return plans.map(({ warmupRuns, times }) => {
    times.sort((a, b) => a - b);
    return { medianMs: median(times), minMs: times[0], maxMs: times[times.length - 1], runs: times.length, warmupRuns };
  });
}

/** Times fn alone: measureSideBySide with one engine. */
export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<TimingStats> {
  return (await measureSideBySide([localSession(fn)], options))[0];
}

/** Deterministic inputs in [-1, 1) (mulberry32), so every engine and process sees the same numbers. */
export function seededUniform(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let a = seed >>> 0;
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
