/**
 * Calls `callback` whenever the page is hidden (`visibilitychange` to hidden) or unloaded
 * (`pagehide`): the last moments a tab can be sure to run code. Does nothing outside a browser.
 * Returns a function that stops listening.
 */
export function onPageHide(callback: () => void): () => void {
  const doc = (globalThis as { document?: EventTarget & { visibilityState?: string } }).document
  const win = globalThis as { addEventListener?: EventTarget['addEventListener']; removeEventListener?: EventTarget['removeEventListener'] }
  const onVisibility = (): void => {
    if (doc?.visibilityState === 'hidden') callback()
  }
  doc?.addEventListener('visibilitychange', onVisibility)
  win.addEventListener?.('pagehide', callback)
  return () => {
    doc?.removeEventListener('visibilitychange', onVisibility)
    win.removeEventListener?.('pagehide', callback)
  }
}
