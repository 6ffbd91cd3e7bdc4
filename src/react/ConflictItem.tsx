import { useId, useState } from 'react'
import type { SyncConflict } from '../core/conflicts'

/** One conflict of the dashboard's list: both versions side by side, keep either, or merge by hand (JSON). */
export function ConflictItem({
  conflict,
  onResolve,
}: {
  conflict: SyncConflict
  onResolve: (resolution: 'local' | 'server' | 'merged', value?: unknown) => void
}) {
  const [merging, setMerging] = useState(false)
  const [draft, setDraft] = useState('')
  const [invalid, setInvalid] = useState<string | null>(null)
  const id = useId()
  const startMerge = (): void => {
    const base = { ...(conflict.server?.value as object | null), ...(conflict.local as object | null) }
    setDraft(JSON.stringify(base, null, 2))
    setMerging(true)
  }
  const submit = (): void => {
    try {
      onResolve('merged', JSON.parse(draft) as unknown)
    } catch {
      setInvalid('The merged version is not valid JSON.')
    }
  }
  return (
    <li className="ris-conflict" aria-labelledby={`${id}-title`}>
      <strong id={`${id}-title`}>{conflict.key}</strong>
      <div className="ris-row">
        <div>
          <h3>Your version{conflict.localDeleted ? ' (deleted)' : ''}</h3>
          <pre>{JSON.stringify(conflict.local, null, 2)}</pre>
        </div>
        <div>
          <h3>Server version {conflict.server ? `v${conflict.server.version}` : '(none)'}</h3>
          <pre>{JSON.stringify(conflict.server?.value ?? null, null, 2)}</pre>
        </div>
      </div>
      <div className="ris-row">
        <button type="button" onClick={() => onResolve('local')}>
          Keep mine
        </button>
        <button type="button" onClick={() => onResolve('server')}>
          Keep server’s
        </button>
        <button type="button" onClick={startMerge} aria-expanded={merging}>
          Merge…
        </button>
      </div>
      {merging ? (
        <div className="ris-row">
          <label htmlFor={`${id}-merge`}>Merged version (JSON)</label>
          <textarea id={`${id}-merge`} rows={6} cols={50} value={draft} onChange={(e) => setDraft(e.target.value)} aria-invalid={invalid !== null} />
          <button type="button" onClick={submit}>
            Save merge
          </button>
          {invalid ? <span role="alert">{invalid}</span> : null}
        </div>
      ) : null}
    </li>
  )
}
