// Reusable pieces for multi-client end-to-end tests against the real Flask server.
// See test/e2e/randomized.soak.ts for them all at work, and README.md in this folder.
export * from './faults'
export * from './devices'
export * from './settle'
export * from './invariants'
