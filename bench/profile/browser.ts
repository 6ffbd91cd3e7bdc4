// The Chromium entry of `node bench/profile/profile.mjs --chromium` (see there): the page's own
// IndexedDB; the driver collects the `console.profile` phases through CDP's Profiler domain.
import { profileCases, type CaseReport } from './cases'

declare global {
  interface Window {
    runProfile(id: string, quick: boolean): Promise<CaseReport>
  }
}

window.runProfile = (id, quick) => {
  const run = profileCases[id]
  if (!run) throw new Error(`no profile case ${id}`)
  return run({ quick, factory: () => indexedDB, browser: true })
}
