/**
 * Domain errors ↔ gRPC status. The status code is chosen per failure (NotFound → NOT_FOUND, Ambiguous →
 * FAILED_PRECONDITION, Offline → UNAVAILABLE, Unauthenticated → UNAUTHENTICATED, PermissionDenied →
 * PERMISSION_DENIED, Timeout → DEADLINE_EXCEEDED); the error itself travels JSON-encoded in trailing metadata, so
 * the client rebuilds the exact tagged error. A status without that payload (a proxy, a crash, no server) is
 * mapped by its code alone.
 */
import * as grpc from "@grpc/grpc-js"
import { AccessError } from "@cmdop/domain/AccessError"
import { MachineError } from "@cmdop/domain/MachineError"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const Wire = Schema.Union(MachineError, AccessError, RelayError)

const codeOf = (e: RelayCallError): grpc.status => {
  switch (e._tag) {
    case "MachineError":
      return e.reason === "NotFound"
        ? grpc.status.NOT_FOUND
        : e.reason === "Ambiguous"
          ? grpc.status.FAILED_PRECONDITION
          : grpc.status.UNAVAILABLE
    case "AccessError":
      return e.reason === "Unauthenticated" ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED
    case "RelayError":
      return e.reason === "Timeout"
        ? grpc.status.DEADLINE_EXCEEDED
        : e.reason === "InvalidRequest"
          ? grpc.status.INVALID_ARGUMENT
          : e.reason === "Unavailable" || e.reason === "MachineLost"
            ? grpc.status.UNAVAILABLE
            : e.reason === "ResourceExhausted"
              ? grpc.status.RESOURCE_EXHAUSTED
              : grpc.status.INTERNAL
  }
}

/** The status a server sends for a domain error. */
export const toStatus = (e: RelayCallError): GrpcStatusError.GrpcStatusError =>
  GrpcStatusError.withPayload(codeOf(e), e.message, Schema.encodeSync(Wire)(e))

/** The domain error a client sees for a status (`server` names the relay in messages). */
export const fromStatus = (e: GrpcStatusError.GrpcStatusError, server: string): RelayCallError => {
  const payload = GrpcStatusError.decodePayload(e).pipe(
    Option.flatMap((json) => Schema.decodeUnknownOption(Wire)(json))
  )
  if (Option.isSome(payload)) return payload.value
  switch (e.code) {
    case grpc.status.UNAUTHENTICATED:
      return new AccessError({ reason: "Unauthenticated", detail: e.details })
    case grpc.status.PERMISSION_DENIED:
      return new AccessError({ reason: "PermissionDenied", detail: e.details })
    case grpc.status.DEADLINE_EXCEEDED:
      return new RelayError({ reason: "Timeout", server, detail: e.details })
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      return new RelayError({ reason: "Unavailable", server, detail: connectionDetail(e.details), unreachable: true })
    case grpc.status.RESOURCE_EXHAUSTED:
      return new RelayError({ reason: "ResourceExhausted", server, detail: e.details })
    case grpc.status.UNIMPLEMENTED:
      return new RelayError({ reason: "Protocol", server, detail: e.details })
    default:
      return new RelayError({ reason: "Internal", server, detail: e.details })
  }
}

/** grpc-js's "No connection established. Last error: Error: connect ECONNREFUSED …" → "connection refused". */
const connectionDetail = (details: string): string => {
  const code = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)\b/.exec(details)?.[1]
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ECONNRESET":
      return "connection reset"
    case "ETIMEDOUT":
      return "connection timed out"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not found"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable"
    default:
      return details
  }
}
