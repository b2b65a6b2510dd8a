/**
 * Running one job (csrc/api_threads.c) on the calling thread and the pool's
 * workers: posting it to their control slots, taking part, waiting for the
 * last tasks (spin, then sleep, within a deadline), and finishing the share
 * of a worker that died (qe_job_rescue). Also how long threads spin before
 * they sleep, and per-job diagnostics.
 *
 * Ground floor: imports only js/c-api.ts and js/thread-protocol.ts.
 */
import type { QEExports } from './c-api';
import { ASLEEP, JOB, JOBSEQ, PART, READY, SEQ, SPIN_US, STATE, slotView } from './thread-protocol';

/** A worker as a job sees it. */
export interface JobHelper {
  /** Byte offset of its control slot. */
  readonly slot: number;
  /** Its thread has ended (its exit event came). */
  readonly exited: boolean;
}

/** What a job needs of its pool. */
export interface JobHost {
  readonly x: QEExports;
  readonly memory: WebAssembly.Memory;
  /**
   * `helper` died or stopped answering during a job: drop it from the pool,
   * end its thread. `mayRun`: it was given up at the deadline, not seen to
   * die, so it may still write until its thread has ended.
   */
  lose(helper: JobHelper, mayRun: boolean): void;
  /** Something left the module in a state the pool must not run jobs on again. */
  fail(error: Error): void;
}

const spin = {
  /**
   * How long (microseconds) an idle worker watches for the next job before
   * it sleeps. None: the next call nudges it awake as it starts, and a
   * worker spinning through the caller's checks and copies only takes a core
   * from the caller when the machine is busy (2 ms here made N = 256 calls
   * about 1.4x slower with one other busy process on 2 cores).
   */
  workerUs: 0,
  /**
   * The same after a nudge: covers the checks and copies of small calls
   * (about 0.3 ms at N = 256, dim 384); a larger call's job finds the worker
   * asleep and wakes it, which costs little next to its work.
   */
  nudgeUs: 500,
  /**
   * At most how long (ms) the calling thread spins for the workers' last
   * tasks before it sleeps (where it may); it spins about two of its own
   * tasks' time when shorter.
   */
  mainMs: 20,
};

/** Tuning for measurements: how long workers (microseconds) and the caller (ms) spin before sleeping. */
export function setSpinTimes(workerUs: number, mainMs: number, nudgeUs = spin.nudgeUs): void {
  spin.workerUs = Math.max(0, Math.floor(workerUs));
  spin.mainMs = Math.max(0, mainMs);
  spin.nudgeUs = Math.max(0, Math.floor(nudgeUs));
}

/**
 * How long the caller waits for a worker's share before it gives the worker
 * up for dead, finishes the share itself and ends the worker's thread: this
 * floor plus ten times the whole job at the caller's own pace (when the
 * caller ran no task, the job at SLOWEST_FLOPS_PER_MS). What is left when
 * the caller runs out of tasks is one task per worker, so a live worker that
 * slow is held up so badly that redoing its share costs less than waiting.
 */
export const JOB_DEADLINE_FLOOR_MS = 1000;
/** 0.25 GFLOP/s: about 1/150 of one core's attention speed on this machine. */
const SLOWEST_FLOPS_PER_MS = 2.5e5;
/** How long one sleep of the waiting caller lasts before it checks its workers again (ms). */
const WAIT_SLICE_MS = 20;

/** One threaded job as measured when stats are on: tasks in all, those the calling thread ran, its time working and waiting. */
export interface ThreadJobStats {
  tasks: number;
  main: number;
  workMs: number;
  waitMs: number;
  /** Workers the job was withdrawn from: they had not taken it when the calling thread ran out of tasks. */
  withdrawn: number;
  /** Workers that died (or stopped answering) during the job; the calling thread finished their share. */
  lost: number;
}

let jobStats: ThreadJobStats[] | null = null;

/** Diagnostics: starts (true) or stops recording per-job task counts; returns what was recorded. */
export function recordThreadJobStats(on: boolean): ThreadJobStats[] {
  const out = jobStats ?? [];
  jobStats = on ? [] : null;
  return out;
}

let mainThreadCanBlock: boolean | undefined;

/** Whether Atomics.wait is allowed on this thread (not on a browser's main thread). */
function canBlock(): boolean {
  if (mainThreadCanBlock === undefined) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      mainThreadCanBlock = true;
    } catch {
      mainThreadCanBlock = false;
    }
  }
  return mainThreadCanBlock;
}

/**
 * Tells sleeping `helpers` that a job is on its way, so they are awake by
 * the time it is posted.
 */
export function nudge(memory: WebAssembly.Memory, helpers: readonly JobHelper[]): void {
  for (const r of helpers) {
    const s = slotView(memory, r.slot);
    if (Atomics.load(s, ASLEEP) !== 1) continue;
    Atomics.store(s, SPIN_US, spin.nudgeUs);
    Atomics.add(s, SEQ, 1);
    Atomics.notify(s, SEQ, 1);
  }
}

/**
 * Runs a created job on this thread and `helpers`, then `finish` (before
 * the job is destroyed), then destroys it. `flops` is the job's size, for
 * the deadline. Returns the threads it was split across (1 when it has a
 * single task; workers that died during it are not counted). `meanwhile`
 * runs on this thread once the helpers have the job, before it takes tasks
 * itself.
 */
export function runJob(
  host: JobHost, job: number, helpers: readonly JobHelper[], what: string, flops: number,
  meanwhile?: () => void, finish?: () => void,
): number {
  const x = host.x;
  const participants = helpers.length + 1;
  let posted = false;
  let settled = false;
  let mainFinished = false;
  let keepJob = false;
  let meanwhileError: { error: unknown } | undefined;
  let took: boolean[] | null = null;
  let lost = 0;
  const withdraw = (): boolean[] => {
    // Helpers that have not taken the job yet are not waited for: it is
    // withdrawn from their slots (once).
    took ??= helpers.map((r) => Atomics.compareExchange(slotView(host.memory, r.slot), JOB, job, 0) !== job);
    return took;
  };
  const wait = (taskMs: number): void => {
    const tasks = x.qe_job_task_count(job);
    const budget = JOB_DEADLINE_FLOOR_MS + (taskMs > 0 ? 10 * taskMs * tasks : flops / SLOWEST_FLOPS_PER_MS);
    const outcome = waitFinished(host, job, helpers, withdraw(), mainFinished, taskMs, budget);
    lost += outcome.lost;
    keepJob ||= outcome.overdue;
  };
  try {
    if (x.qe_job_task_count(job) < 2) {
      for (let i = 0; i < participants; i++) x.qe_job_work(job, i);
      settled = true;
      finish?.();
      return 1;
    }
    helpers.forEach((r, i) => {
      const s = slotView(host.memory, r.slot);
      Atomics.store(s, SPIN_US, spin.workerUs);
      Atomics.store(s, PART, i + 1);
      Atomics.store(s, JOB, job);
      Atomics.add(s, JOBSEQ, 1);
      Atomics.add(s, SEQ, 1);
      if (Atomics.load(s, ASLEEP) === 1) Atomics.notify(s, SEQ, 1);
    });
    posted = true;
    // The job goes on whatever the caller's own work does; its error is
    // thrown once the job is over.
    try {
      meanwhile?.();
    } catch (error) {
      meanwhileError = { error };
    }
    const t0 = performance.now();
    const mine = x.qe_job_work(job, 0);
    mainFinished = true;
    const t1 = performance.now();
    wait(mine > 0 ? (t1 - t0) / mine : 0);
    settled = true;
    if (jobStats !== null) {
      jobStats.push({
        tasks: x.qe_job_task_count(job), main: mine, workMs: t1 - t0, waitMs: performance.now() - t1,
        withdrawn: withdraw().filter((t) => !t).length, lost,
      });
    }
    if (meanwhileError === undefined) finish?.();
  } finally {
    // Something threw after the job was posted (the calling thread's own
    // part trapped): helpers that took it still run; wait for them before
    // the job and the caller's buffers go.
    if (posted && !settled) wait(0);
    // Every participant that joined has counted itself out (or was counted
    // out by a rescue), so nothing uses the job any more; the calling
    // thread's own part trapping mid-task never counts out, and destroy then
    // keeps the job. A worker given up at the deadline was told to end, but
    // may not have yet: its job is left allocated (a few hundred bytes).
    if (!keepJob && x.qe_job_destroy(job) !== 0) {
      host.fail(new Error(`a ${what} job could not be released after a failure on the calling thread`));
    }
  }
  if (meanwhileError !== undefined) throw meanwhileError.error;
  // The threads the job was split across (recordThreadJobStats tells
  // which workers it was withdrawn from), less those that died in it.
  return participants - lost;
}

/**
 * Waits until the calling thread (when `mainCounted`) and every helper that
 * `took` the job have counted themselves finished. What is left is at most
 * one task per worker, each about `taskMs` (the caller's own time per task;
 * 0 when it ran none): spin about twice that, then sleep until the C side
 * notifies, so a worker held up on a busy machine gets the core instead of
 * a spinning caller. A helper that died (its slot left READY, or its exit
 * event came) has its share finished here (qe_job_rescue) and is dropped;
 * after `budgetMs` so is one that has not finished (`overdue`).
 */
function waitFinished(
  host: JobHost, job: number, helpers: readonly JobHelper[], took: readonly boolean[], mainCounted: boolean,
  taskMs: number, budgetMs: number,
): { lost: number; overdue: boolean } {
  const x = host.x;
  const i32 = new Int32Array(host.memory.buffer);
  const at = x.qe_job_finished_address(job) >>> 2;
  let participants = mainCounted ? 1 : 0;
  for (const t of took) if (t) participants++;
  const outcome = { lost: 0, overdue: false };
  if (Atomics.load(i32, at) >= participants) return outcome;
  const block = canBlock();
  const start = performance.now();
  const until = start + Math.min(spin.mainMs, taskMs > 0 ? 0.05 + 2 * taskMs : 1);
  const deadline = start + budgetMs;
  const settled = took.map((t) => !t);
  let slots: Int32Array[] | null = null;
  let spinning = true;
  for (let n = 1; ; n++) {
    const done = Atomics.load(i32, at);
    if (done >= participants) return outcome;
    if (spinning) {
      // What is left is about one task: spin for it (a worker that dies
      // meanwhile is noticed once the spin is over).
      if ((n & 1023) === 0) spinning = performance.now() < until;
      continue;
    }
    // Then sleep until the C side (or a dying worker) notifies, or a slice
    // is over; a thread that may not block keeps spinning.
    if (block) Atomics.wait(i32, at, done, WAIT_SLICE_MS);
    else if ((n & 1023) !== 0) continue;
    const now = performance.now();
    slots ??= helpers.map((r) => slotView(host.memory, r.slot));
    // Helpers that died, and past the deadline every helper still out.
    helpers.forEach((r, i) => {
      if (settled[i]) return;
      const dead = r.exited || Atomics.load(slots![i], STATE) !== READY;
      if (!dead && now < deadline) return;
      settled[i] = true;
      const redone = x.qe_job_rescue(job, i + 1);
      if (redone < 0) {
        // Not finished and not countable: give up on it; destroy then keeps the job.
        participants--;
        host.fail(new Error(`the share of a worker that died could not be finished (status ${redone})`));
      }
      if (redone === 0 && !dead) return; // it had just finished by itself
      if (!dead) outcome.overdue = true;
      outcome.lost++;
      host.lose(r, !dead);
    });
  }
}
