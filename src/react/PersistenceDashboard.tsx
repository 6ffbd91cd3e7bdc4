import type { ThunkDispatch, UnknownAction } from '@reduxjs/toolkit'
import { memo, useCallback, useDeferredValue, useEffect, useId, useMemo, useRef, useState, type CSSProperties } from 'react'
import { useDispatch, useSelector } from 'react-redux'
import type { OperationRecord } from '../core/events'
import { discardDeadLetter, resolveConflict, retryDeadLetter } from '../core/actions'
import { syncFromFlaskBulk, syncToFlaskBulk } from '../remote/redux/thunks'
import type { SyncState } from '../remote/redux/syncSlice'
import { ConflictItem } from './ConflictItem'
import { usePersistenceContext } from './context'
import { useAtMostEvery } from './useAtMostEvery'
import { usePersistence } from './usePersistence'

/** Props of {@link PersistenceDashboard}. */
export interface PersistenceDashboardProps {
  /** Extra class names on the root element (theme it with the `--ris-*` CSS variables). */
  className?: string
  style?: CSSProperties
  /** @default 'Persistence' */
  title?: string
  /**
   * How long a toast stays, in ms.
   * @default 6000
   */
  toastMs?: number
  /**
   * The dashboard redraws at most once per this many ms, with the newest state when the wait
   * ends; `0` redraws on every change. Sync work changes the state several times per edit (the
   * local write, the push, each pull): redrawing each time would keep the page's main thread
   * from the next step of that work.
   * @default 100
   */
  refreshMs?: number
}

interface Toast {
  id: number
  kind: 'error' | 'info'
  text: string
}

/** Scoped styles: every rule is under `.ris-dashboard`, nothing leaks to the page. */
const STYLES = `
.ris-dashboard{--ris-bg:#fff;--ris-fg:#1b1f24;--ris-muted:#57606a;--ris-border:#d0d7de;--ris-ok:#1a7f37;--ris-bad:#cf222e;--ris-accent:#0969da;--ris-radius:8px;--ris-font:system-ui,sans-serif;
  font-family:var(--ris-font);color:var(--ris-fg);background:var(--ris-bg);border:1px solid var(--ris-border);border-radius:var(--ris-radius);padding:12px;display:grid;gap:12px;max-width:760px}
.ris-dashboard h2{font-size:1.05rem;margin:0}
.ris-dashboard h3{font-size:.9rem;margin:0 0 6px}
.ris-dashboard .ris-row{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.ris-dashboard .ris-badge{border:1px solid currentColor;border-radius:999px;padding:2px 10px;font-weight:600}
.ris-dashboard .ris-badge[data-state=online]{color:var(--ris-ok)}
.ris-dashboard .ris-badge[data-state=offline]{color:var(--ris-bad)}
.ris-dashboard dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:6px;margin:0}
.ris-dashboard dt{color:var(--ris-muted);font-size:.75rem}
.ris-dashboard dd{margin:0;font-weight:600}
.ris-dashboard button{font:inherit;border:1px solid var(--ris-border);border-radius:6px;background:var(--ris-bg);color:var(--ris-fg);padding:4px 10px;cursor:pointer}
.ris-dashboard button:focus-visible,.ris-dashboard input:focus-visible,.ris-dashboard textarea:focus-visible{outline:2px solid var(--ris-accent);outline-offset:1px}
.ris-dashboard button:disabled{opacity:.5;cursor:default}
.ris-dashboard .ris-chart{width:100%;height:60px;border:1px solid var(--ris-border);border-radius:6px}
.ris-dashboard .ris-chart .ris-ok-bar{fill:var(--ris-ok)}
.ris-dashboard .ris-chart .ris-bad-bar{fill:var(--ris-bad)}
.ris-dashboard .ris-progress{height:10px;border:1px solid var(--ris-border);border-radius:6px;overflow:hidden}
.ris-dashboard .ris-progress>div{height:100%;background:var(--ris-accent)}
.ris-dashboard .ris-conflict{border:1px solid var(--ris-border);border-radius:6px;padding:8px;display:grid;gap:6px}
.ris-dashboard pre{margin:0;font-size:.75rem;white-space:pre-wrap;word-break:break-word;background:rgba(127,127,127,.08);padding:4px;border-radius:4px}
.ris-dashboard .ris-toasts{display:grid;gap:6px}
.ris-dashboard .ris-toast{border-left:4px solid var(--ris-accent);padding:6px 8px;background:rgba(127,127,127,.08);display:flex;justify-content:space-between;gap:8px}
.ris-dashboard .ris-toast[data-kind=error]{border-left-color:var(--ris-bad)}
.ris-dashboard label{display:inline-flex;gap:4px;align-items:center}
.ris-dashboard input[type=number]{width:6em}
`

/** A hundred bars that all move when an operation is recorded: redrawn only when the history changed (the monitor keeps its array until then). */
const DurationChart = memo(function DurationChart({ history }: { history: readonly OperationRecord[] }) {
  const width = 300
  const height = 60
  const max = Math.max(1, ...history.map((o) => o.durationMs))
  const bar = width / 100
  const failed = history.filter((o) => !o.ok).length
  return (
    <svg
      className="ris-chart"
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={`Durations of the last ${history.length} operations, longest ${max} ms, ${failed} failed (drawn below the axis)`}
    >
      {history.map((o, i) => {
        const h = Math.max(1, (o.durationMs / max) * (height - 4))
        return (
          <rect key={i} className={o.ok ? 'ris-ok-bar' : 'ris-bad-bar'} x={i * bar} width={Math.max(1, bar - 0.5)} y={o.ok ? height - h : 0} height={h}>
            <title>{`${o.kind}${o.slice ? ` ${o.slice}` : ''}: ${o.items} item(s), ${o.durationMs} ms${o.ok ? '' : `, failed: ${o.error?.message ?? ''}`}`}</title>
          </rect>
        )
      })}
    </svg>
  )
})

/**
 * The persistence dashboard: connection status, metrics with a chart of the last 100 operation
 * durations, queue and outbox depth, manual push/pull/flush, auto-sync settings, a progress bar
 * during bulk syncs, toasts for errors, and the list of conflicts waiting for a decision.
 * Accessible (labels, roles, keyboard, text next to every colour), themeable through `--ris-*`
 * CSS variables scoped to `.ris-dashboard`, and renderable on the server.
 *
 * @example
 * ```tsx
 * <PersistenceDashboard className="my-theme" />
 * ```
 */
export function PersistenceDashboard(props: PersistenceDashboardProps) {
  const { selectSync } = usePersistenceContext()
  const { status, metrics, autoSyncStatus, flush, configureAutoSync, syncNow } = usePersistence()
  const sync = useSelector((state: unknown) => selectSync(state)) as SyncState
  const live = useMemo(() => ({ status, metrics, autoSyncStatus, sync }), [status, metrics, autoSyncStatus, sync])
  // A dashboard is read by people: it redraws at most every `refreshMs`, and then in a
  // transition React may interrupt, so redrawing it never holds up the sync work that changed
  // the state (an edit on its way to the other devices, docs/realtime.md "Where the time goes").
  const shown = useDeferredValue(useAtMostEvery(live, props.refreshMs ?? 100))
  return <DashboardView {...props} {...shown} flush={flush} configureAutoSync={configureAutoSync} syncNow={syncNow} />
}

type ViewProps = PersistenceDashboardProps &
  Pick<ReturnType<typeof usePersistence>, 'status' | 'metrics' | 'autoSyncStatus' | 'flush' | 'configureAutoSync' | 'syncNow'> & { sync: SyncState }

const DashboardView = memo(function DashboardView({
  className,
  style,
  title = 'Persistence',
  toastMs = 6000,
  status,
  metrics,
  autoSyncStatus,
  sync,
  flush,
  configureAutoSync,
  syncNow,
}: ViewProps) {
  const { persistence, autoSync } = usePersistenceContext()
  const dispatch = useDispatch<ThunkDispatch<unknown, unknown, UnknownAction>>()
  const [busy, setBusy] = useState<string | null>(null)
  const [toasts, setToasts] = useState<Toast[]>([])
  const nextToast = useRef(1)
  const headingId = useId()

  const toast = useCallback(
    (kind: Toast['kind'], text: string) => {
      const id = nextToast.current++
      setToasts((all) => [...all.slice(-4), { id, kind, text }])
      if (toastMs > 0) setTimeout(() => setToasts((all) => all.filter((t) => t.id !== id)), toastMs)
    },
    [toastMs],
  )

  // Errors become toasts: sync errors from the slice, storage errors from the instance.
  const lastSyncError = useRef<string | null>(null)
  useEffect(() => {
    if (status.error && status.error !== lastSyncError.current) toast('error', status.error)
    lastSyncError.current = status.error
  }, [status.error, toast])
  const lastStorageErrors = useRef(persistence.getStatus().errorCount)
  useEffect(
    () =>
      persistence.subscribe((s) => {
        if (s.errorCount > lastStorageErrors.current && s.lastError) toast('error', `${s.lastError.name}: ${s.lastError.message}`)
        lastStorageErrors.current = s.errorCount
      }),
    [persistence, toast],
  )
  const seenConflicts = useRef(sync.conflicts.length)
  useEffect(() => {
    if (sync.conflicts.length > seenConflicts.current) {
      const latest = sync.conflicts[sync.conflicts.length - 1]
      if (latest) toast('info', `Conflict on ${latest.key}: ${latest.resolution === 'pending' ? 'your decision is needed' : `resolved (${latest.resolution})`}`)
    }
    seenConflicts.current = sync.conflicts.length
  }, [sync.conflicts, toast])

  const run = (name: string, work: () => Promise<unknown>) => () => {
    setBusy(name)
    work()
      .then(() => toast('info', `${name} done`))
      .catch((error: unknown) => toast('error', `${name} failed: ${(error as { message?: string }).message ?? String(error)}`))
      .finally(() => setBusy(null))
  }

  const pending = sync.conflicts.filter((c) => c.resolution === 'pending')
  const rate = metrics.totalOperations === 0 ? '—' : `${(metrics.successRate * 100).toFixed(1)}%`
  const connected = status.flaskConnected
  const progress = sync.progress

  return (
    <section className={['ris-dashboard', className].filter(Boolean).join(' ')} style={style} aria-labelledby={headingId}>
      <style>{STYLES}</style>
      <div className="ris-row">
        <h2 id={headingId}>{title}</h2>
        <span className="ris-badge" data-state={connected ? 'online' : 'offline'} role="status" aria-live="polite" data-testid="connection">
          {connected ? '● Connected' : '○ Offline — local-only mode'}
        </span>
        <span data-testid="sync-status">Sync: {status.syncStatus}</span>
        {sync.realtime.state !== 'off' || sync.realtime.error ? (
          <span data-testid="realtime" title={sync.realtime.error ?? undefined}>
            Real-time: {sync.realtime.state}
            {metrics.pokes > 0 ? ` (${metrics.pokes} pokes, p95 ${Math.round(metrics.p95VisibleLatency)} ms)` : ''}
          </span>
        ) : null}
      </div>

      <dl aria-label="Metrics">
        <div>
          <dt>Success rate</dt>
          <dd data-testid="success-rate">{rate}</dd>
        </div>
        <div>
          <dt>Operations</dt>
          <dd>
            {metrics.successfulOperations} ok / {metrics.failedOperations} failed
          </dd>
        </div>
        <div>
          <dt>Duration avg / p95</dt>
          <dd>
            {metrics.averageOperationTime.toFixed(1)} / {metrics.p95OperationTime} ms
          </dd>
        </div>
        <div>
          <dt>Queue</dt>
          <dd data-testid="queue-depth">{metrics.pendingOperations}</dd>
        </div>
        <div>
          <dt>Outbox</dt>
          <dd data-testid="outbox-depth">{sync.outboxDepth}</dd>
        </div>
        <div>
          <dt>Dead letters</dt>
          <dd>{sync.deadLetters.length}</dd>
        </div>
        <div>
          <dt>Last sync</dt>
          <dd>{status.lastSyncTime ? new Date(status.lastSyncTime).toLocaleTimeString() : 'never'}</dd>
        </div>
      </dl>

      <DurationChart history={metrics.operationHistory} />

      {progress ? (
        <div>
          <div
            className="ris-progress"
            role="progressbar"
            aria-label={`Bulk ${progress.operation}`}
            aria-valuemin={0}
            aria-valuemax={progress.total}
            aria-valuenow={progress.done}
          >
            <div style={{ width: `${progress.total === 0 ? 100 : (progress.done / progress.total) * 100}%` }} />
          </div>
          <span>
            {progress.operation} {progress.done}/{progress.total}
          </span>
        </div>
      ) : null}

      <div className="ris-row" role="group" aria-label="Manual sync">
        <button type="button" disabled={busy !== null} onClick={run('Push', () => dispatch(syncToFlaskBulk()).unwrap())}>
          Push
        </button>
        <button type="button" disabled={busy !== null} onClick={run('Pull', () => dispatch(syncFromFlaskBulk()).unwrap())}>
          Pull
        </button>
        <button type="button" disabled={busy !== null} onClick={run('Flush', flush)}>
          Flush
        </button>
        <button type="button" disabled={busy !== null} onClick={run('Sync', syncNow)}>
          Sync now
        </button>
      </div>

      <fieldset className="ris-row">
        <legend>Auto-sync</legend>
        <label>
          <input type="checkbox" checked={autoSyncStatus.enabled} onChange={(e) => configureAutoSync({ enabled: e.target.checked })} />
          Enabled
        </label>
        <label>
          Interval (s)
          <input
            type="number"
            min={1}
            defaultValue={Math.round((autoSync?.getAutoSyncConfig().intervalMs ?? 30_000) / 1000)}
            onChange={(e) => {
              const seconds = Number(e.target.value)
              if (seconds >= 1) configureAutoSync({ intervalMs: seconds * 1000 })
            }}
          />
        </label>
        <label>
          <input
            type="checkbox"
            checked={autoSync?.getAutoSyncConfig().syncOnChange ?? false}
            disabled={!autoSync}
            onChange={(e) => configureAutoSync({ syncOnChange: e.target.checked })}
          />
          Sync on change
        </label>
        <label>
          Max queue
          <input
            type="number"
            min={1}
            defaultValue={autoSync?.getAutoSyncConfig().maxQueueSize ?? 50}
            onChange={(e) => {
              const size = Number(e.target.value)
              if (Number.isInteger(size) && size >= 1) configureAutoSync({ maxQueueSize: size })
            }}
          />
        </label>
        <span data-testid="next-sync">Next sync: {autoSyncStatus.nextSyncIn === null ? '—' : `${Math.ceil(autoSyncStatus.nextSyncIn / 1000)} s`}</span>
        <span>Changes pending: {autoSyncStatus.changeCounter}</span>
      </fieldset>

      {pending.length > 0 ? (
        <div>
          <h3>Conflicts to resolve ({pending.length})</h3>
          <ul aria-label="Conflicts" style={{ listStyle: 'none', padding: 0, display: 'grid', gap: 8 }}>
            {pending.map((conflict) => (
              <ConflictItem
                key={conflict.key}
                conflict={conflict}
                onResolve={(resolution, value) =>
                  dispatch(
                    resolution === 'merged' ? resolveConflict({ key: conflict.key, resolution, value }) : resolveConflict({ key: conflict.key, resolution }),
                  )
                }
              />
            ))}
          </ul>
        </div>
      ) : null}

      {sync.deadLetters.length > 0 ? (
        <div>
          <h3>Rejected changes ({sync.deadLetters.length})</h3>
          <ul aria-label="Rejected changes" style={{ listStyle: 'none', padding: 0, display: 'grid', gap: 8 }}>
            {sync.deadLetters.map((letter) => (
              <li key={letter.opId} className="ris-conflict" data-testid="rejected-item">
                <div className="ris-row">
                  <strong>{letter.key}</strong>
                  <span>
                    {letter.type} refused{letter.status ? ` (HTTP ${letter.status})` : ''}: {letter.message} [{letter.code}]
                  </span>
                </div>
                <span>{letter.rolledBack ? 'Rolled back to the server’s value.' : 'The local value was kept.'}</span>
                <div className="ris-row">
                  <button type="button" onClick={() => dispatch(retryDeadLetter({ opId: letter.opId }))}>
                    Try again
                  </button>
                  <button type="button" onClick={() => dispatch(discardDeadLetter({ opId: letter.opId }))}>
                    Discard
                  </button>
                </div>
              </li>
            ))}
          </ul>
        </div>
      ) : null}

      <div className="ris-toasts" role="region" aria-label="Notifications" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className="ris-toast" data-kind={t.kind} role={t.kind === 'error' ? 'alert' : 'status'}>
            <span>
              {t.kind === 'error' ? 'Error: ' : ''}
              {t.text}
            </span>
            <button type="button" aria-label="Dismiss notification" onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}>
              ×
            </button>
          </div>
        ))}
      </div>
    </section>
  )
})
