/**
 * The machine's identity, `~/.cmdop/agent.json`: a stable machine id (UUID v4), the machine secret that
 * proves it to the relay (32 random bytes, base64url; the relay keeps only a hash), hostname, display name and the
 * relay it last registered with. Mode 0600, written atomically under `agent.json.lock`; unknown fields written by
 * newer versions are kept. A file that does not parse is an error naming the file, and is never overwritten.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Hostname, isDisplayName, MachineId } from "@cmdop/domain/Machine"
import * as AtomicFile from "@cmdop/node/AtomicFile"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as FileLock from "@cmdop/node/FileLock"
import type { MachineIdentity } from "@cmdop/domain/AgentLink"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"

/** The contents of `agent.json`. */
export const Identity = Schema.Struct({
  machine_id: MachineId,
  machine_secret: Schema.Redacted(
    Schema.String.pipe(Schema.minLength(32, { message: () => "the machine secret is too short" }))
  ),
  hostname: Hostname,
  name: Schema.String.pipe(Schema.minLength(1, { message: () => "the display name is empty" })),
  /** The relay address used at the last `agent register`. */
  server: Schema.optional(Schema.String)
})
export type Identity = typeof Identity.Type

const preserveUnknown = { onExcessProperty: "preserve" } as const

/** `agent.json` is unreadable, corrupt, unwritable or locked, or a given hostname/name is invalid. */
export class AgentIdentityError extends Schema.TaggedError<AgentIdentityError>()("AgentIdentityError", {
  reason: Schema.Literal("Corrupt", "Unreadable", "Unwritable", "Locked", "Invalid"),
  /** The file, as shown to the user (`~/.cmdop/agent.json`). */
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "Corrupt":
        return `${this.path} ${this.detail}: left unchanged; it holds this machine's id and secret: fix it, or move it away and run "cmdop agent register" to register the machine anew`
      case "Invalid":
        return this.detail
      default:
        return `cannot ${this.reason === "Unreadable" ? "read" : "write"} ${this.path}: ${this.detail}`
    }
  }
}

/** What `loadOrCreate` sets on the identity (an existing id and secret are always kept). */
export interface Changes {
  readonly hostname?: string | undefined
  readonly name?: string | undefined
  readonly server?: string | undefined
}

/** A fresh machine secret: 32 random bytes, base64url. */
export const generateSecret = (): Redacted.Redacted<string> =>
  Redacted.make(crypto.randomBytes(32).toString("base64url"))

/** This machine's hostname, made to fit the `Hostname` rules (invalid characters become `-`). */
export const defaultHostname = (): string => {
  const cleaned = os
    .hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 253)
  return cleaned === "" ? "localhost" : cleaned
}

/** `linux 6.8.0-45-generic`: the platform and kernel release, as the relay shows it. */
export const osDescription = (): string => `${process.platform} ${os.release()}`

/** The machine as the agent presents itself in `Hello` and at registration. */
export const toMachineIdentity = (identity: Identity, agentVersion: string): MachineIdentity => ({
  machineId: identity.machine_id,
  machineSecret: identity.machine_secret,
  hostname: identity.hostname,
  name: identity.name,
  os: osDescription(),
  agentVersion
})

/** Decodes the text of `agent.json`; `shown` names the file in errors. */
export const decode = (shown: string, text: string): Effect.Effect<Identity, AgentIdentityError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Effect.fail(new AgentIdentityError({ reason: "Corrupt", path: shown, detail: "is not valid JSON" }))
  }
  return Schema.decodeUnknown(
    Identity,
    preserveUnknown
  )(json).pipe(
    Effect.mapError(
      (error) =>
        new AgentIdentityError({
          reason: "Corrupt",
          path: shown,
          detail: `does not have the expected shape (${ParseResult.ArrayFormatter.formatErrorSync(error)
            .map((issue) => `${issue.path.length ? issue.path.join(".") + ": " : ""}${issue.message}`)
            .join("; ")})`
        })
    )
  )
}

/** The text of `agent.json`: two-space JSON with a trailing newline, unknown fields kept. */
export const encode = (identity: Identity): string =>
  JSON.stringify(Schema.encodeSync(Identity, preserveUnknown)(identity), null, 2) + "\n"

const ioError =
  (reason: "Unreadable" | "Unwritable", shown: string) =>
  (error: PlatformError): AgentIdentityError =>
    new AgentIdentityError({ reason, path: shown, detail: error.message })

const read = (file: string, shown: string) =>
  AtomicFile.readIfExists(file).pipe(
    Effect.mapError(ioError("Unreadable", shown)),
    Effect.flatMap((text) =>
      text === undefined ? Effect.succeed(Option.none()) : Effect.map(decode(shown, text), Option.some)
    )
  )

/** The identity in `agent.json`, or none when the machine was never registered. */
export const load: Effect.Effect<
  Option.Option<Identity>,
  AgentIdentityError,
  FileSystem.FileSystem | CmdopPaths
> = Effect.flatMap(CmdopPaths, (paths) => read(paths.agent, paths.display(paths.agent)))

const validate = (changes: Changes): Effect.Effect<void, AgentIdentityError> => {
  if (changes.hostname !== undefined && !Schema.is(Hostname)(changes.hostname))
    return Effect.fail(
      new AgentIdentityError({
        reason: "Invalid",
        path: "",
        detail: `invalid hostname ${JSON.stringify(changes.hostname)}: use letters, digits, '.', '-' or '_'`
      })
    )
  if (changes.name !== undefined && changes.name.trim() === "")
    return Effect.fail(new AgentIdentityError({ reason: "Invalid", path: "", detail: "the display name is empty" }))
  if (changes.name !== undefined && !isDisplayName(changes.name))
    return Effect.fail(
      new AgentIdentityError({
        reason: "Invalid",
        path: "",
        detail: `invalid display name ${JSON.stringify(changes.name)}: it may not contain control characters`
      })
    )
  return Effect.void
}

/**
 * The identity in `agent.json`, created on first use (new id and secret, this machine's hostname, the hostname as
 * name). An existing id and secret are kept; `changes` that differ from the file are written back.
 */
export const loadOrCreate = (
  changes: Changes = {}
): Effect.Effect<Identity, AgentIdentityError, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    yield* validate(changes)
    const paths = yield* CmdopPaths
    const fs = yield* FileSystem.FileSystem
    const file = paths.agent
    const shown = paths.display(file)
    return yield* Effect.scoped(
      Effect.gen(function* () {
        yield* AtomicFile.ensurePrivateDir(path.dirname(file)).pipe(Effect.mapError(ioError("Unwritable", shown)))
        yield* FileLock.acquire(file + ".lock").pipe(
          Effect.mapError((e) =>
            e instanceof FileLock.LockTimeout
              ? new AgentIdentityError({ reason: "Locked", path: shown, detail: `held by pid ${e.holder}` })
              : ioError("Unwritable", shown)(e)
          )
        )
        const existing = yield* read(file, shown)
        const hostname = changes.hostname ?? defaultHostname()
        const base: Identity = Option.getOrElse(existing, () => ({
          machine_id: MachineId.make(crypto.randomUUID()),
          machine_secret: generateSecret(),
          hostname,
          name: changes.name ?? hostname
        }))
        const next: Identity = {
          ...base,
          ...(changes.hostname === undefined ? {} : { hostname: changes.hostname }),
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.server === undefined ? {} : { server: changes.server })
        }
        const unchanged =
          Option.isSome(existing) &&
          next.hostname === base.hostname &&
          next.name === base.name &&
          next.server === base.server
        if (!unchanged) yield* AtomicFile.write(file, encode(next)).pipe(Effect.mapError(ioError("Unwritable", shown)))
        return next
      })
    ).pipe(Effect.provideService(FileSystem.FileSystem, fs))
  })
