/**
 * Type-level reading of grpc-js service definitions (what ts-proto emits with `outputServices=grpc-js`): the
 * message types of a method and which methods have which streaming shape. The shape is read from the literal
 * `requestStream` / `responseStream` flags, so definitions must keep them literal (ts-proto's `as const` does).
 */
import type * as grpc from "@grpc/grpc-js"

/** Any grpc-js service definition. */
export type Service = grpc.ServiceDefinition

/** The request message type of method definition `M`. */
export type RequestOf<M> = M extends { readonly requestDeserialize: (bytes: Buffer) => infer A } ? A : never

/** The response message type of method definition `M`. */
export type ResponseOf<M> = M extends { readonly responseDeserialize: (bytes: Buffer) => infer A } ? A : never

type KeysWhere<S, RequestStream extends boolean, ResponseStream extends boolean> = {
  [K in keyof S]: S[K] extends { readonly requestStream: RequestStream; readonly responseStream: ResponseStream }
    ? K
    : never
}[keyof S] &
  string

/** Names of the unary methods of `S`. */
export type Unary<S> = KeysWhere<S, false, false>

/** Names of the server-streaming methods of `S`. */
export type ServerStreaming<S> = KeysWhere<S, false, true>

/** Names of the client-streaming methods of `S`. */
export type ClientStreaming<S> = KeysWhere<S, true, false>

/** Names of the bidirectional-streaming methods of `S`. */
export type Bidi<S> = KeysWhere<S, true, true>
