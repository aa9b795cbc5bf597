/**
 * A small protobuf wire codec for the fields a hot path needs, decoding `bytes` fields as views into the received
 * Buffer (no copy) and encoding them with one copy (into the message). Supports varint scalars, strings, bytes and
 * nested messages; unknown fields are skipped; a field seen twice keeps its last value (as protobuf does).
 */

/** Wire type and value kind of one declared field. */
export type FieldKind = "bytes" | "string" | "uint32" | "int32" | "uint64" | "bool" | { readonly message: Spec }

/** Field name → [field number, kind]. */
export type Spec = Readonly<Record<string, readonly [number, FieldKind]>>

type ValueOf<K> = K extends "bytes"
  ? Buffer
  : K extends "string"
    ? string
    : K extends "bool"
      ? boolean
      : K extends { readonly message: infer S extends Spec }
        ? View<S> | undefined
        : number

/** The decoded shape of a `Spec`: absent scalars read as their zero value, absent messages as `undefined`. */
export type View<S extends Spec> = { -readonly [K in keyof S]: ValueOf<S[K][1]> }

const empty = Buffer.alloc(0)

const zeroOf = (kind: FieldKind): unknown =>
  kind === "bytes" ? empty : kind === "string" ? "" : kind === "bool" ? false : typeof kind === "object" ? undefined : 0

class Reader {
  pos = 0
  constructor(readonly buf: Buffer) {}

  /** A varint: its low 32 bits, and its value as a float (exact below 2^53). */
  varint(): { readonly lo: number; readonly value: number } {
    let lo = 0
    let value = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error("truncated varint")
      const b = this.buf[this.pos++]!
      if (i < 5) lo |= (b & 0x7f) << (7 * i)
      value += (b & 0x7f) * scale
      scale *= 128
      if ((b & 0x80) === 0) return { lo, value }
    }
    throw new Error("varint longer than 10 bytes")
  }

  delimited(): Buffer {
    const length = this.varint().value
    const end = this.pos + length
    if (end > this.buf.length) throw new Error("truncated length-delimited field")
    const view = this.buf.subarray(this.pos, end)
    this.pos = end
    return view
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint()
    else if (wireType === 1) this.pos += 8
    else if (wireType === 2) this.delimited()
    else if (wireType === 5) this.pos += 4
    else throw new Error(`unsupported wire type ${wireType}`)
    if (this.pos > this.buf.length) throw new Error("truncated field")
  }
}

interface Compiled {
  readonly byNumber: Map<number, readonly [string, FieldKind]>
  readonly fields: ReadonlyArray<readonly [string, number, FieldKind]>
}

const compiled = new WeakMap<Spec, Compiled>()
const compile = (spec: Spec): Compiled => {
  let c = compiled.get(spec)
  if (c === undefined) {
    const fields = Object.entries(spec).map(([name, [n, kind]]) => [name, n, kind] as const)
    c = { fields, byNumber: new Map(fields.map(([name, n, kind]) => [n, [name, kind] as const])) }
    compiled.set(spec, c)
  }
  return c
}

const wireTypeOf = (kind: FieldKind): number =>
  kind === "bytes" || kind === "string" || typeof kind === "object" ? 2 : 0

/** Decodes `buf`; `bytes` fields (also of nested messages) are views sharing `buf`'s memory. */
export const decode = <S extends Spec>(spec: S, buf: Buffer): View<S> => {
  const { fields, byNumber } = compile(spec)
  const out: Record<string, unknown> = {}
  for (const [name, , kind] of fields) out[name] = zeroOf(kind)
  const reader = new Reader(buf)
  while (reader.pos < buf.length) {
    const tag = reader.varint().value
    const number = Math.floor(tag / 8)
    const wireType = tag % 8
    const field = byNumber.get(number)
    if (field === undefined || wireTypeOf(field[1]) !== wireType) {
      reader.skip(wireType)
      continue
    }
    const [name, kind] = field
    if (kind === "bytes") out[name] = reader.delimited()
    else if (kind === "string") out[name] = reader.delimited().toString("utf8")
    else if (typeof kind === "object") out[name] = decode(kind.message, reader.delimited())
    else {
      const { lo, value } = reader.varint()
      out[name] = kind === "bool" ? lo !== 0 : kind === "int32" ? lo | 0 : kind === "uint32" ? lo >>> 0 : value
    }
  }
  return out as View<S>
}

const varintBytes = (value: number): Buffer => {
  const bytes: Array<number> = []
  if (value < 0) {
    // Negative int32: ten bytes, two's complement over 64 bits.
    let lo = value >>> 0
    for (let i = 0; i < 4; i++) {
      bytes.push((lo & 0x7f) | 0x80)
      lo >>>= 7
    }
    bytes.push((lo & 0x0f) | 0x70 | 0x80, 0xff, 0xff, 0xff, 0xff, 0x01)
    return Buffer.from(bytes)
  }
  let v = value
  while (v >= 128) {
    bytes.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  bytes.push(v)
  return Buffer.from(bytes)
}

const appendField = (pieces: Array<Buffer>, n: number, kind: FieldKind, value: unknown): void => {
  if (kind === "bytes" || kind === "string" || typeof kind === "object") {
    if (value === undefined) return
    const payload =
      kind === "bytes"
        ? (value as Uint8Array)
        : kind === "string"
          ? Buffer.from(value as string, "utf8")
          : encode(kind.message, value as View<Spec>)
    if (payload.byteLength === 0 && typeof kind !== "object") return
    pieces.push(varintBytes(n * 8 + 2), varintBytes(payload.byteLength), payload as Buffer)
    return
  }
  const number = kind === "bool" ? (value ? 1 : 0) : (value as number)
  if (number === 0) return
  pieces.push(varintBytes(n * 8), varintBytes(number))
}

/**
 * Encodes `value`: zero values are left out (proto3), `bytes` fields are copied once, into the result. Pass views
 * freely: nothing is copied before that.
 */
export const encode = <S extends Spec>(spec: S, value: View<S>): Buffer => {
  const pieces: Array<Buffer> = []
  for (const [name, n, kind] of compile(spec).fields)
    appendField(pieces, n, kind, (value as Record<string, unknown>)[name])
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
}
