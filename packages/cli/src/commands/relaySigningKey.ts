/**
 * `cmdop relay signing-key list`, on the relay host: the keys share links are signed with, oldest first, which one
 * signs new links (current), which still verify older links, and which are retired (their links stopped working).
 * The key material is never shown.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Output from "../Output.js"
import { storeOptions, when, withStore } from "./relayStore.js"

type Status = "current" | "valid" | "retired"

export const signingKeyList = Command.make("list", storeOptions, (args) =>
  Effect.gen(function* () {
    const { current, keys } = yield* withStore(args, (store) =>
      Effect.all({ keys: store.listSigningKeys, current: store.currentSigningKey })
    )
    const currentKid = current._tag === "Some" ? current.value.kid : undefined
    const status = (kid: string, retiredAt: number | undefined): Status =>
      retiredAt !== undefined ? "retired" : kid === currentKid ? "current" : "valid"
    if (args.json)
      return yield* Output.json({
        signing_keys: keys.map((k) => ({
          kid: k.kid,
          algorithm: k.algorithm,
          status: status(k.kid, k.retiredAt),
          created_at: new Date(k.createdAt).toISOString(),
          retired_at: k.retiredAt === undefined ? null : new Date(k.retiredAt).toISOString()
        }))
      })
    if (keys.length === 0)
      return yield* Output.notice(
        "no signing keys yet: the relay makes one when it starts (or now: cmdop relay signing-key rotate)"
      )
    yield* Output.line(
      Output.table(
        ["KID", "ALGORITHM", "STATUS", "CREATED", "RETIRED"],
        keys.map((k) => [
          k.kid,
          k.algorithm,
          status(k.kid, k.retiredAt),
          when(k.createdAt),
          k.retiredAt === undefined ? "-" : when(k.retiredAt)
        ])
      )
    )
    const valid = keys.filter((k) => k.retiredAt === undefined && k.kid !== currentKid)
    if (valid.length > 0)
      yield* Output.notice(
        `links signed with ${valid.map((k) => k.kid).join(", ")} still work; retire with: cmdop relay signing-key retire <kid>`
      )
  })
).pipe(
  Command.withDescription("the share-link signing keys: which signs new links, which still verify, which are retired")
)
