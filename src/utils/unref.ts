/**
 * Lets the process exit while `handle` is still open, where the runtime can (Node's and Deno's
 * timers and BroadcastChannel have `unref()`; browsers have nothing to unref). Returns `handle`.
 *
 * Rule: what only waits for something to happen (the logout and tab channels, auto-sync's
 * interval) is unref'd, so a Node script that did its work ends by itself. What carries pending
 * work (a debounce, a settle timer, a retry) keeps the process alive until that work is done.
 */
export function unref<T>(handle: T): T {
  const target = handle as { unref?: unknown } | null
  if (target !== null && typeof target === 'object' && typeof target.unref === 'function') (target.unref as () => void)()
  return handle
}
