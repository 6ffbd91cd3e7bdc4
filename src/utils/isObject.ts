/** Whether `value` is a non-null object and not an array (a JSON object, a record). */
export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
