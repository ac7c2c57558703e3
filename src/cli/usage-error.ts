/** A command line the `xrd` parser accepted but a command cannot use: answered with the usage text and exit code 2. */
export class UsageError extends Error {}
