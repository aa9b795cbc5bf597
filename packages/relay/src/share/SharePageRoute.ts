/**
 * `GET /s/<token>`: a valid link opens the browser terminal on its machine (`TerminalPage`); anything else gets
 * `SharePage`'s plain error page with the right status (and never a stack trace).
 *
 * Refused tokens count against their source's budget of refusals, the one gRPC and the browser terminal's
 * WebSocket use too (`refusalThrottle.ts`): once a source has spent it, its requests are answered 429 with
 * `Retry-After` before the token is read — no signature check, no refusal cache, no store.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type { ShareService } from "@cmdop/domain/ShareService"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Admission from "../internal/admission.js"
import { sourceOfAddress } from "../internal/refusalThrottle.js"
import * as TerminalPage from "../web/TerminalPage.js"
import * as SharePage from "./SharePage.js"

const html = (page: SharePage.Page) =>
  HttpServerResponse.text(page.html, {
    status: page.status,
    contentType: "text/html; charset=utf-8",
    headers: page.headers
  })

/** The route's handler; `server` names the relay in refusals, `grpcAddress` is the CLI hint of a valid link. */
export const handler = (
  shares: ShareService["Type"],
  admission: Admission.Admission,
  server: string,
  grpcAddress: string
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const source = sourceOfAddress(Option.getOrUndefined(request.remoteAddress))
    const blocked = yield* Effect.either(Admission.checkSource(admission, server, source))
    if (blocked._tag === "Left") return yield* html(SharePage.throttledPage(blocked.left.detail))
    const { token } = yield* HttpRouter.params
    const grant = yield* Effect.either(shares.validate(token ?? ""))
    if (grant._tag === "Right")
      return TerminalPage.response({
        token: token ?? "",
        machineHostname: grant.right.machineHostname,
        cliServer: grpcAddress,
        ...(grant.right.expiresAt === undefined ? {} : { expiresAt: grant.right.expiresAt })
      })
    // A store failure is not the token's fault: only real refusals spend the source's budget.
    if (grant.left.reason !== "Unavailable") yield* Admission.noteRefused(admission, source)
    // The refusal was audited by that one `validate`; render its page without checking again.
    return yield* html(SharePage.failurePage(grant.left))
  })
