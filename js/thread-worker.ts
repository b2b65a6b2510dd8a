/**
 * The worker's whole program. It is not imported by the package: the build
 * (scripts/gen-worker-source.js) bundles it with js/thread-protocol.ts into
 * one expression whose value is startThreadWorker, and writes that text to
 * js/worker-source.ts; js/platform.ts starts it with `eval: true` in Node and
 * from a Blob URL in browsers, so it works the same from js/ under ts-jest,
 * from dist/ and from a bundle, with no file to locate. It never returns to
 * its event loop until told to exit, and needs none: it sleeps in
 * Atomics.wait. It may use nothing but the language, WebAssembly, Atomics and
 * performance (it runs in Node's workers and in Web Workers alike).
 *
 * Ground floor: imports only js/thread-protocol.ts.
 */
import {
  ASLEEP, CMD, CMD_EXIT, DIE_EXIT, DIE_HANG, EXITED, FAILED, JOB, JOBSEQ, PART, RAN, READY, SEQ, SPIN_US, STATE,
  TEST_DIE, TOOK_US, slotView, threadedImports, type WorkerHost, type WorkerStartData,
} from './thread-protocol';

/** The exports of the threaded module a worker calls. */
interface WorkerExports {
  qe_job_work(job: number, participant: number): number;
  qe_job_claim_task(job: number, participant: number): number;
  qe_job_finished_address(job: number): number;
  __stack_pointer: WebAssembly.Global;
}

/** Runs the worker until it is told to exit (or its job's code throws). */
export function startThreadWorker(d: WorkerStartData, host: WorkerHost): void {
  const ctrl = slotView(d.memory, d.slot);
  let x: WorkerExports;
  try {
    x = new WebAssembly.Instance(d.module, threadedImports(d.memory)).exports as unknown as WorkerExports;
    x.__stack_pointer.value = d.stackTop;
  } catch (error) {
    Atomics.store(ctrl, STATE, FAILED);
    Atomics.notify(ctrl, STATE);
    throw error;
  }
  // The job this worker is in (0 between jobs): a caller waiting on it is woken if the thread ends.
  let current = 0;
  const wakeCaller = (): void => {
    if (current !== 0) Atomics.notify(new Int32Array(d.memory.buffer), x.qe_job_finished_address(current) >>> 2);
  };
  host.onExit(() => {
    // The thread is ending (process.exit() in it): from now on it runs no
    // task, so the caller may finish this worker's share itself.
    Atomics.store(ctrl, STATE, EXITED);
    Atomics.notify(ctrl, STATE);
    wakeCaller();
  });

  let lastJob = Atomics.load(ctrl, JOBSEQ);
  let watch = false;
  Atomics.store(ctrl, STATE, READY);
  Atomics.notify(ctrl, STATE);
  for (;;) {
    if (Atomics.load(ctrl, CMD) === CMD_EXIT) break;
    if (Atomics.load(ctrl, JOBSEQ) !== lastJob) {
      lastJob = Atomics.load(ctrl, JOBSEQ);
      // Take the job; 0 when the main thread withdrew it (it ran every task itself).
      const job = Atomics.exchange(ctrl, JOB, 0);
      if (job === 0) continue;
      current = job;
      const participant = Atomics.load(ctrl, PART);
      try {
        const die = Atomics.load(ctrl, TEST_DIE);
        if (die !== 0) dieMidJob(x, ctrl, host, job, participant, die);
        const t0 = performance.now();
        const ran = x.qe_job_work(job, participant);
        const t1 = performance.now();
        // For diagnostics (recordThreadJobStats): tasks run and how long they took (us).
        Atomics.store(ctrl, RAN, ran);
        Atomics.store(ctrl, TOOK_US, (t1 - t0) * 1000);
      } catch (error) {
        // This thread ends with the error: say so, so that the caller finishes
        // this worker's share (its task in flight included) itself.
        Atomics.store(ctrl, STATE, FAILED);
        Atomics.notify(ctrl, STATE);
        wakeCaller();
        throw error;
      }
      current = 0;
      watch = true;
      continue;
    }
    if (watch) {
      // After a job or a nudge another job is likely soon (a loop of
      // calls): watch for it a while, as waking from Atomics.wait costs
      // tens of microseconds, and at times milliseconds on a busy host.
      watch = false;
      const until = performance.now() + Atomics.load(ctrl, SPIN_US) / 1000;
      for (let n = 1; Atomics.load(ctrl, JOBSEQ) === lastJob && Atomics.load(ctrl, CMD) !== CMD_EXIT; n++) {
        if ((n & 1023) === 0 && performance.now() >= until) break;
      }
      continue;
    }
    const seq = Atomics.load(ctrl, SEQ);
    Atomics.store(ctrl, ASLEEP, 1);
    if (Atomics.load(ctrl, JOBSEQ) === lastJob && Atomics.load(ctrl, CMD) !== CMD_EXIT) Atomics.wait(ctrl, SEQ, seq);
    Atomics.store(ctrl, ASLEEP, 0);
    watch = true;
  }
  Atomics.store(ctrl, STATE, EXITED);
  Atomics.notify(ctrl, STATE);
}

/**
 * Tests only (TEST_DIE, set in the slot by a test): claims a task of the job
 * and dies holding it, as a worker killed mid-task would. DIE_EXIT ends the
 * thread, DIE_THROW throws (as a trap would), DIE_HANG stops forever without
 * a word (a thread the caller cannot tell from dead).
 */
function dieMidJob(x: WorkerExports, ctrl: Int32Array, host: WorkerHost, job: number, participant: number, how: number): void {
  Atomics.store(ctrl, TEST_DIE, 0);
  x.qe_job_claim_task(job, participant);
  if (how === DIE_EXIT) host.exit();
  if (how === DIE_HANG) for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  throw new Error('test hook: worker died mid-task');
}
