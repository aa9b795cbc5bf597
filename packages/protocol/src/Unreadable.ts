/**
 * A message this side of a call cannot read: a kind from a newer peer, or one missing a part it needs. The gRPC
 * definitions of this package hand it over instead of failing the call, so a handler decides what to skip; it
 * encodes as a message with no kind, which reads back as `Unreadable` again.
 */
export interface Unreadable {
  readonly _tag: "Unreadable"
}

export const unreadable: Unreadable = { _tag: "Unreadable" }

/** Narrows a message to the ones that could be read. */
export const isReadable = <A extends { readonly _tag: string }>(m: A | Unreadable): m is A => m._tag !== "Unreadable"
