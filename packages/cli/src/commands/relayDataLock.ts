/**
 * One relay per embedded store: `relay serve` and `cmdop up` hold the data dir's relay lock while they run (the
 * same lock as the in-process `RelayServer.serve`, `@cmdop/relay/cluster/StoreLock`). A second relay on the same
 * data dir stops with a clear error instead of sharing a SQLite file it would corrupt the state of.
 */
import { lockDataDir as lockStore } from "@cmdop/relay/cluster/StoreLock"
import * as Effect from "effect/Effect"
import { CliError } from "../CliError.js"

/** Holds the data dir's relay lock for the life of the scope (creating the directory, 0700, when missing). */
export const lockDataDir = (dataDir: string) =>
  lockStore(dataDir).pipe(Effect.mapError((error) => new CliError({ message: error.message })))
