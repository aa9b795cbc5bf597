/**
 * A person's email address as accounts hold it: trimmed and lower-cased, so `Alice@Example.com ` and
 * `alice@example.com` are the same account. The check is deliberately loose (one `@`, a dot in the domain, no
 * spaces): the address is proven by the person using the sign-in link, not by a pattern.
 */
import * as Schema from "effect/Schema"

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/** A normalized email address (lower case, no surrounding whitespace). */
export const Email = Schema.String.pipe(
  Schema.pattern(EMAIL, { message: () => "an email address looks like name@example.com" }),
  Schema.filter((s) => s === normalize(s) || "an email address is stored in lower case without spaces"),
  Schema.maxLength(254),
  Schema.brand("Email")
)
export type Email = typeof Email.Type

/** Trims and lower-cases an address (the key accounts are found by). */
export const normalize = (raw: string): string => raw.trim().toLowerCase()

/** Decodes what a person typed into an `Email`, normalizing it first. */
export const fromInput = (raw: string) => Schema.decodeUnknownEither(Email)(normalize(raw))

/** The domain part (`example.com`). */
export const domainOf = (email: Email): string => email.slice(email.lastIndexOf("@") + 1)
