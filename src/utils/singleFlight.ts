/**
 * One run at a time: a call while a run is going asks for one more run after it (however many
 * calls came), and resolves when the run that includes it is over. A failed run rejects the
 * calls it covered; the next call starts afresh. `mayRepeat` can refuse the extra run (an
 * instance disposed meanwhile).
 */
export function singleFlight(run: () => Promise<void>, mayRepeat: () => boolean = () => true): () => Promise<void> {
  let current: Promise<void> | null = null
  let again = false
  return function start(): Promise<void> {
    if (current) {
      again = true
      return current
    }
    current = (async () => {
      try {
        do {
          again = false
          await run()
        } while (again && mayRepeat())
      } finally {
        current = null
      }
    })()
    return current
  }
}
