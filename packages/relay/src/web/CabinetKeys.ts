/**
 * The cabinet's API keys, for owners of the active workspace: the live keys by name, masked (a key is shown once,
 * when it is made, and only its prefix is kept); making one more named key; revoking one (its very next call is
 * refused: the relay checks keys on every call, with no cache); and rotating (every key and the workspace's share
 * links retire, one new key). Each change is in the audit trail. Ids in a form are looked up in the active
 * workspace only, so another workspace's key is refused like an unknown one.
 */
import { Accounts } from "@cmdop/accounts/Accounts"
import * as Machine from "@cmdop/domain/Machine"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Caller } from "../Authenticator.js"
import { KeyName, maskedKey } from "../store/records.js"
import { RelayStore } from "../store/service.js"
import { postedForm } from "./CabinetContext.js"
import { button, csrfField } from "./CabinetForms.js"
import { escapeHtml, messagePage, page, seeOther } from "./CabinetPage.js"

/** The owners' key section of the cabinet. */
export const section = (caller: Caller, csrf: string) =>
  Effect.gen(function* () {
    const store = yield* RelayStore
    const keys = yield* store.listKeys(caller.workspaceName)
    const rows = keys
      .map(
        (k) =>
          `<tr><td>${escapeHtml(k.name)}</td><td>${escapeHtml(maskedKey(k))}</td><td>${escapeHtml(k.id)}</td><td>${button(csrf, "/cabinet/keys/revoke", "Revoke", { key: k.id })}</td></tr>`
      )
      .join("\n")
    return `
      <h2>API keys</h2>
      <p>A key is shown once, when it is made; here only its first characters. Revoking one refuses its next call.</p>
      <table id="keys"><tr><th>Name</th><th>Key</th><th>Id</th><th></th></tr>
${rows}
      </table>
      <form method="post" action="/cabinet/keys/create">${csrfField(csrf)}
        <label>Name <input name="name" required pattern="[A-Za-z0-9._\\-]{1,64}" placeholder="ci"></label>
        <button type="submit">Create a key</button>
      </form>
      <p>Rotating retires every key and the workspace's share links, and issues one new key (shown once).</p>
      ${button(csrf, "/cabinet/keys/rotate", "Rotate the API key")}`
  })

const ownersOnly = messagePage("Cabinet", "only an owner of the workspace can do this", 403)

const shownOnce = (title: string, workspace: string, what: string, key: Redacted.Redacted<string>) =>
  page(
    title,
    `      <p>${what} of ${escapeHtml(workspace)}, shown once (only its first characters are kept):</p>
      <p class="secret" id="new-key">${escapeHtml(Redacted.value(key))}</p>
      <p><a href="/cabinet">Back</a></p>`
  )

/** The owner's form, after the checks every cabinet form has; a response when it is refused. */
const ownerForm = Effect.gen(function* () {
  const form = yield* postedForm
  if (!("fields" in form)) return form
  if (form.caller.role !== "owner") return ownersOnly
  return form
})

const audit = (
  form: { readonly user: { readonly id: string }; readonly caller: Caller },
  action: "key.created" | "key.revoked" | "key.rotated",
  detail: string
) =>
  Effect.gen(function* () {
    const accounts = yield* Accounts
    yield* accounts.record({
      actor: form.user.id,
      action,
      subject: form.caller.workspaceId,
      workspaceId: Machine.WorkspaceId.make(form.caller.workspaceId),
      detail,
      at: yield* Clock.currentTimeMillis
    })
  })

const createKey = Effect.gen(function* () {
  const form = yield* ownerForm
  if (!("fields" in form)) return form
  const store = yield* RelayStore
  const name = Schema.decodeUnknownEither(KeyName)(form.fields.name ?? "")
  if (name._tag === "Left")
    return messagePage("Cabinet", "a key name is 1 to 64 letters, digits, '.', '_' or '-' (e.g. ci, laptop)", 400)
  const created = yield* Effect.either(store.createKey(form.caller.workspaceName, name.right))
  if (created._tag === "Left") return messagePage("Cabinet", created.left.message, 409)
  yield* audit(
    form,
    "key.created",
    `API key "${name.right}" (${created.right.key.id}) of ${form.caller.workspaceName} created in the cabinet by ${form.user.email}`
  )
  return shownOnce(
    "New API key",
    form.caller.workspaceName,
    `The new key "${escapeHtml(name.right)}"`,
    created.right.apiKey
  )
})

const revokeKey = Effect.gen(function* () {
  const form = yield* ownerForm
  if (!("fields" in form)) return form
  const store = yield* RelayStore
  // Only the form's id: a name could be another key's id in some other workspace's listing.
  const id = form.fields.key ?? ""
  const key = (yield* store.listKeys(form.caller.workspaceName)).find((k) => k.id === id)
  if (key === undefined) return messagePage("Cabinet", "no such API key in your active workspace", 404)
  yield* store.revokeKey(form.caller.workspaceName, key.id)
  yield* audit(
    form,
    "key.revoked",
    `API key "${key.name}" (${key.id}) of ${form.caller.workspaceName} revoked in the cabinet by ${form.user.email}`
  )
  return seeOther("/cabinet")
})

const rotateKey = Effect.gen(function* () {
  const form = yield* ownerForm
  if (!("fields" in form)) return form
  const store = yield* RelayStore
  const key = yield* store.rotateKey(form.caller.workspaceName)
  yield* audit(
    form,
    "key.rotated",
    `API key of ${form.caller.workspaceName} rotated in the cabinet by ${form.user.email}`
  )
  return shownOnce(
    "New API key",
    form.caller.workspaceName,
    "The new key (every earlier key and the share links stopped working)",
    key
  )
})

/** The key routes, over `Accounts` and `RelayStore` in context. */
export const routes = Effect.map(Effect.all([Accounts, RelayStore]), ([accounts, store]) => {
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Accounts, accounts),
      Effect.provideService(RelayStore, store),
      Effect.catchAll((e) => Effect.succeed(messagePage("Cabinet", String((e as Error).message), 500)))
    )
  return HttpRouter.empty.pipe(
    HttpRouter.post("/cabinet/keys/create", provide(createKey)),
    HttpRouter.post("/cabinet/keys/revoke", provide(revokeKey)),
    HttpRouter.post("/cabinet/keys/rotate", provide(rotateKey))
  )
})
