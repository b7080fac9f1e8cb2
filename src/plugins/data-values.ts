import type { CallContext, TaskHandle } from '../lua-bridge/values.ts'
import { LuaRuntimeError, TaskAbortedError } from '../lua-bridge/scheduler.ts'

/** The task calling a JS function, or undefined outside any task (a module's main chunk at load time). */
export function taskOf (ctx: CallContext | undefined): TaskHandle | undefined {
  return ctx?.task
}

/** A short message for an error that came out of running a Lua function as a task. */
export function taskErrorMessage (err: unknown): string {
  if (err instanceof LuaRuntimeError || err instanceof TaskAbortedError) return err.message
  if (err instanceof Error) return err.message || err.name
  return String(err)
}
