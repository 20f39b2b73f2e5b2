// The main thread answers /health, admits or refuses uploads and parses them; every other thread
// of the process (inference workers, ONNX Runtime's, libuv's decodes, V8's helpers) does work that
// can wait a few milliseconds. Under load they are runnable all the time, and at equal priority
// the event loop queued behind them for 390 ms of every second (README "Threads"). A higher nice
// value for them lets the main thread run as soon as it wakes.
//
// Linux only: there a thread id is a process id to setpriority(2), which then applies to that one
// thread, and a new thread inherits its creator's nice value. Elsewhere this does nothing.
import { readdirSync, readlinkSync } from 'node:fs'
import os from 'node:os'

/** The system calls used, behind an interface so tests can make them fail. */
export interface PriorityOps {
  /** Thread ids of this process; empty where /proc does not exist. */
  threads: () => number[]
  /** This thread's id, or undefined where /proc does not exist. */
  self: () => number | undefined
  get: (tid: number) => number
  set: (tid: number, nice: number) => void
}

const orNone = <T>(read: () => T, none: T): T => {
  try {
    return read()
  } catch {
    return none
  }
}

/** The calls on Linux, reading thread ids from `proc` (a test passes a folder that has none). */
export const procPriority = (proc = '/proc'): PriorityOps => ({
  threads: () => orNone(() => readdirSync(`${proc}/self/task`).map(Number), []),
  // "thread-self" links to "<pid>/task/<tid>".
  self: () => orNone(() => Number(readlinkSync(`${proc}/thread-self`).split('/').at(-1)), undefined),
  get: (tid) => os.getPriority(tid),
  set: (tid, nice) => { os.setPriority(tid, nice) }
})

const linuxPriority = procPriority()

/**
 * Raises one thread's nice value to `nice`; never lowers it (that needs privileges, and a thread
 * already nicer was made so on purpose). False when the thread could not be changed: it ended
 * meanwhile (ESRCH) or the system refused.
 */
function lower (tid: number, nice: number, ops: PriorityOps): boolean {
  try {
    if (ops.get(tid) < nice) ops.set(tid, nice)
    return true
  } catch {
    return false
  }
}

/** Every thread but `mainTid` (the event loop's, whose id is the pid) to `nice`; how many could not be. */
export function lowerOtherThreads (nice: number, mainTid: number = process.pid, ops: PriorityOps = linuxPriority): number {
  if (nice <= 0) return 0
  return ops.threads().filter((tid) => tid !== mainTid && !lower(tid, nice, ops)).length
}

/**
 * The calling thread (a worker, before it starts the threads of its own, which inherit it) to
 * `nice`. False when it could not be.
 */
export function lowerThisThread (nice: number, ops: PriorityOps = linuxPriority): boolean {
  if (nice <= 0) return true
  const tid = ops.self()
  return tid !== undefined && lower(tid, nice, ops)
}
