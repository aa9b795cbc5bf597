/**
 * The one error of the gRPC bridge: a call ended with a non-OK status. Servers fail handlers with it to choose the
 * status their client sees; clients get it back with the same code, details and trailing metadata. Trailing
 * metadata is how a domain error crosses the wire: encode it as JSON under `errorMetadataKey` on the server and
 * decode it on the client.
 */
import * as grpc from "@grpc/grpc-js"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** Trailing-metadata key that carries a JSON-encoded domain error. A `-bin` key, so any UTF-8 text fits. */
export const errorMetadataKey = "cmdop-error-bin"

export class GrpcStatusError extends Schema.TaggedError<GrpcStatusError>()("GrpcStatusError", {
  code: Schema.Enums(grpc.status),
  details: Schema.String,
  metadata: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { exact: true })
}) {
  override get message(): string {
    return `${grpc.status[this.code] ?? this.code}: ${this.details}`
  }
}

/**
 * Converts grpc-js metadata to a plain record, keeping the first value of each key. Values of `-bin` keys are
 * decoded as UTF-8.
 */
export const metadataToRecord = (metadata: grpc.Metadata): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata.getMap())) {
    out[key] = typeof value === "string" ? value : value.toString("utf8")
  }
  return out
}

/**
 * Converts a plain record to grpc-js metadata. Values of `-bin` keys are sent as their UTF-8 bytes; other values
 * must be printable ASCII (a gRPC rule), otherwise grpc-js throws.
 */
export const recordToMetadata = (record: Readonly<Record<string, string>> | undefined): grpc.Metadata => {
  const metadata = new grpc.Metadata()
  if (record === undefined) return metadata
  for (const [key, value] of Object.entries(record)) {
    metadata.set(key, key.endsWith("-bin") ? Buffer.from(value, "utf8") : value)
  }
  return metadata
}

/** A status error carrying `payload` as JSON under `errorMetadataKey`, for `decodePayload` on the other side. */
export const withPayload = (code: grpc.status, details: string, payload: unknown): GrpcStatusError =>
  new GrpcStatusError({ code, details, metadata: { [errorMetadataKey]: JSON.stringify(payload) } })

/** The JSON payload under `errorMetadataKey`, if present and parseable. Validate it with a Schema before use. */
export const decodePayload = (error: GrpcStatusError): Option.Option<unknown> => {
  const text = error.metadata?.[errorMetadataKey]
  if (text === undefined) return Option.none()
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

// Headers grpc-js folds into the trailers of a trailers-only response; they are transport, not error data.
const transportKeys = new Set(["content-type", "date", "user-agent", "te"])
const isTransportKey = (key: string) => transportKeys.has(key) || key.startsWith("grpc-") || key.startsWith(":")

const isStatusCode = (code: unknown): code is grpc.status =>
  typeof code === "number" && Number.isInteger(code) && grpc.status[code] !== undefined

/**
 * Maps whatever grpc-js reported (a `ServiceError`, a status object, or anything thrown) to a `GrpcStatusError`.
 * Values without a status code become UNKNOWN. Transport headers (`content-type`, `date`, `grpc-*`) are dropped
 * from the trailing metadata.
 */
export const fromUnknown = (error: unknown): GrpcStatusError => {
  if (error instanceof GrpcStatusError) return error
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown }
    const code = isStatusCode(e.code) ? e.code : grpc.status.UNKNOWN
    const details =
      typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : "unknown error"
    const record: Record<string, string> = {}
    if (e.metadata instanceof grpc.Metadata) {
      for (const [key, value] of Object.entries(metadataToRecord(e.metadata))) {
        if (!isTransportKey(key)) record[key] = value
      }
    }
    return new GrpcStatusError(Object.keys(record).length > 0 ? { code, details, metadata: record } : { code, details })
  }
  return new GrpcStatusError({ code: grpc.status.UNKNOWN, details: String(error) })
}

/** The status object grpc-js servers send for this error (code, details, trailing metadata). */
export const toStatusObject = (error: GrpcStatusError): Partial<grpc.StatusObject> & { code: grpc.status } => ({
  code: error.code,
  details: error.details,
  metadata: recordToMetadata(error.metadata)
})
