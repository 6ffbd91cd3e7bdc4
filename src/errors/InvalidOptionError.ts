import { SyncError } from './SyncError'

/** An option has an invalid value. The message names the option. Thrown synchronously by factories and configure calls. */
export class InvalidOptionError extends SyncError {
  override name = 'InvalidOptionError' as const
  /** The option's path, e.g. `slices.files.debounceMs`. */
  readonly option: string

  constructor(option: string, message: string) {
    super(`Invalid option \`${option}\`: ${message}`)
    this.option = option
  }
}
