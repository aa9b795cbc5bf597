/**
 * `ClusterEvents` over PostgreSQL `LISTEN/NOTIFY` on one channel per cluster (`channelFor`). The database publishes store changes itself:
 * triggers on the relay and account tables (installed idempotently at start, under an advisory lock so nodes
 * starting together do not race) notify on a revoked link, a retired key, a moved machine, a changed membership or
 * login; so a revocation made by any node, or by `cmdop relay key rotate` run on the host, reaches every node.
 *
 * A listening connection can die without a word (a server restart, a half-open TCP connection). Each subscription
 * therefore pings itself on the channel every `pingEvery`: its first own ping back means it is listening (then it
 * emits `Resync`), and no ping back within `deadAfter` means it is not, so it drops that connection (without
 * waiting for a goodbye a dead server never sends) and listens again on a new one, emitting `Resync` once back.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Clock from "effect/Clock"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash, randomUUID } from "node:crypto"
import { explain } from "../store/sqlSupport.js"
import { ClusterEvent, ClusterEvents, ClusterEventsError, Resync } from "./ClusterEvents.js"
import { installTriggers } from "./clusterTriggers.js"

/**
 * The channel of a cluster whose tables are in the `public` schema. Notifications reach every listener of one
 * database, whatever its schema, so a cluster in another schema takes a channel of its own (`channelFor`); separate
 * databases never hear each other.
 */
export const defaultChannel = "cmdop_cluster_events"

/**
 * The channel for a cluster whose tables are in `schema`: `defaultChannel` for `public`, else one named after the
 * schema (a digest of it when the name would not make a short plain identifier), so two clusters sharing a
 * database under different schemas never wake each other.
 */
export const channelFor = (schema: string): string => {
  if (schema === "public") return defaultChannel
  const named = `${defaultChannel}_${schema}`
  return /^[a-z0-9_]+$/.test(schema) && named.length <= 63
    ? named
    : `${defaultChannel}_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`
}

/** The channel the options name, or the one of the schema the connection works in (its `search_path`). */
const resolveChannel = (sql: SqlClient.SqlClient, options: Options) =>
  options.channel !== undefined
    ? Effect.succeed(options.channel)
    : Effect.map(sql<{ readonly schema: string | null }>`SELECT current_schema() AS schema`, ([row]) =>
        channelFor(row?.schema ?? "public")
      )

const Ping = Schema.TaggedStruct("Ping", { token: Schema.String })
const decodeWire = Schema.decodeUnknownOption(Schema.parseJson(Schema.Union(ClusterEvent, Ping)))

export interface Options {
  readonly url: Redacted.Redacted<string>
  /**
   * The channel. Notifications reach every listener of the database (all schemas); by default the channel follows
   * the schema (`channelFor`), so clusters sharing one database under different schemas take one each.
   */
  readonly channel?: string
  /** How often a subscription checks its connection. Default 1 s. */
  readonly pingEvery?: Duration.DurationInput
  /** A subscription not hearing its own ping for this long listens again on a new connection. Default 3 s. */
  readonly deadAfter?: Duration.DurationInput
  /** Pause before listening again after a failure. Default 500 ms. */
  readonly retryAfter?: Duration.DurationInput
}

const failure = (operation: string) => (error: { readonly message: string; readonly cause?: unknown }) =>
  new ClusterEventsError({ operation, detail: explain(error) })

/** `pg_notify`, not `NOTIFY`: a utility statement takes no bound parameters. */
const notify = (sql: SqlClient.SqlClient, channel: string, payload: string) =>
  Effect.asVoid(sql`SELECT pg_notify(${channel}, ${payload})`)

const pgLayer = (url: Redacted.Redacted<string>) => PgClient.layer({ url, connectTimeout: Duration.seconds(5) })

/**
 * One listening connection, until it fails: events go to `emit`, `Resync` first once its own ping came back.
 * Its connections are closed in the background when it ends.
 */
const session = (options: Options, channel: string, emit: (event: ClusterEvent) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const sessionScope = yield* Scope.make()
    yield* Effect.addFinalizer(() =>
      Scope.close(sessionScope, Exit.void).pipe(Effect.timeout("5 seconds"), Effect.ignore, Effect.forkDaemon)
    )
    const context = yield* Layer.buildWithScope(pgLayer(options.url), sessionScope)
    const pg = Context.get(context, PgClient.PgClient)
    const sql = Context.get(context, SqlClient.SqlClient)
    const token = randomUUID()
    const deadAfterMs = Duration.toMillis(options.deadAfter ?? "3 seconds")
    let lastHeard = yield* Clock.currentTimeMillis
    let listening = false

    const onPayload = (payload: string) =>
      Effect.gen(function* () {
        lastHeard = yield* Clock.currentTimeMillis
        const message = decodeWire(payload)
        if (message._tag === "None") return yield* Effect.logWarning(`ignoring a cluster event: ${payload}`)
        if (message.value._tag !== "Ping") return yield* emit(message.value)
        if (message.value.token === token && !listening) {
          listening = true
          yield* emit(Resync.make({}))
        }
      })

    const listen = pg
      .listen(channel)
      .pipe(
        Stream.runForEach(onPayload),
        Effect.zipRight(Effect.fail(new ClusterEventsError({ operation: "listening", detail: "the listener ended" })))
      )
    const ping = Effect.gen(function* () {
      const silentMs = (yield* Clock.currentTimeMillis) - lastHeard
      if (silentMs > deadAfterMs)
        return yield* new ClusterEventsError({
          operation: "listening",
          detail: `no ping came back for ${silentMs} ms`
        })
      yield* notify(sql, channel, JSON.stringify(Ping.make({ token }))).pipe(
        Effect.timeout(Duration.millis(deadAfterMs)),
        Effect.mapError(failure("pinging"))
      )
    }).pipe(Effect.repeat(Schedule.spaced(options.pingEvery ?? "1 second")))
    // `disconnect`: when the ping gives up on a dead connection, stop at once, not when its listener hangs up.
    return yield* Effect.raceFirst(Effect.disconnect(listen), ping)
  }).pipe(Effect.scoped)

/** Builds the service: installs the triggers (failing when the database cannot be reached) and serves for the scope. */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(pgLayer(options.url)).pipe(Effect.mapError(failure("connecting to PostgreSQL")))
    const sql = Context.get(context, SqlClient.SqlClient)
    const channel = yield* resolveChannel(sql, options).pipe(Effect.mapError(failure("reading the schema")))
    yield* installTriggers(channel).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError(failure("installing the cluster event triggers"))
    )
    const subscribe = Stream.unwrapScoped(
      Effect.gen(function* () {
        const queue = yield* Queue.unbounded<ClusterEvent>()
        // A lost connection is said once, in one line, and so is its return (a `Resync`: the listener hears its own
        // ping again); during a database outage the retries every `retryAfter` stay quiet.
        let failing = false
        const emit = (event: ClusterEvent) =>
          Effect.zipRight(
            failing && event._tag === "Resync"
              ? Effect.zipRight(
                  Effect.sync(() => {
                    failing = false
                  }),
                  Effect.logInfo("cluster events: listening again")
                )
              : Effect.void,
            Queue.offer(queue, event)
          )
        yield* session(options, channel, emit).pipe(
          Effect.catchAllCause((cause) => {
            if (failing) return Effect.void
            failing = true
            const squashed = Cause.squash(cause)
            const why = squashed instanceof Error ? squashed.message : String(squashed)
            return Effect.logWarning(
              `cluster events: the listening connection failed (${why}); trying again every ${Duration.format(options.retryAfter ?? "500 millis")}, the periodic sweep covers meanwhile`
            )
          }),
          Effect.zipRight(Effect.sleep(options.retryAfter ?? "500 millis")),
          Effect.forever,
          Effect.forkScoped
        )
        return Stream.fromQueue(queue)
      })
    )
    return ClusterEvents.of({
      publish: (event) =>
        notify(sql, channel, JSON.stringify(Schema.encodeSync(ClusterEvent)(event))).pipe(
          Effect.mapError(failure("publishing"))
        ),
      subscribe
    })
  })

export const layer = (options: Options): Layer.Layer<ClusterEvents, ClusterEventsError> =>
  Layer.scoped(ClusterEvents, make(options))
