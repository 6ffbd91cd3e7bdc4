import { useEffect, useRef, useState } from 'react'

/** `value` as of at most `ms` ago: a change shows when the wait since the last one shown ends (with the newest value); `ms` 0 shows every change. */
export function useAtMostEvery<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value)
  const latest = useRef(value)
  latest.current = value
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  useEffect(() => {
    if (ms <= 0 || Object.is(value, shown) || timer.current !== null) return
    timer.current = setTimeout(() => {
      timer.current = null
      setShown(() => latest.current)
    }, ms)
  }, [value, shown, ms])
  useEffect(
    () => () => {
      if (timer.current !== null) clearTimeout(timer.current)
      timer.current = null
    },
    [],
  )
  return ms <= 0 ? value : shown
}
