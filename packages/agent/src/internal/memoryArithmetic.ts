/**
 * `$(( … ))` for the in-memory shell (`memoryShell.ts`): integer arithmetic with `+ - * / %`, unary minus and
 * parentheses over numbers and variable names (unset or non-numeric: 0), as POSIX shells evaluate it. A recursive
 * descent over the tokens; no `eval`.
 */

/** The value of `expression`, or a message saying what is wrong with it. */
export const evaluate = (
  expression: string,
  variable: (name: string) => string
): { readonly value: number } | { readonly error: string } => {
  const tokens = expression.match(/\d+|[A-Za-z_][A-Za-z0-9_]*|[-+*/%()]|\S/g) ?? []
  let at = 0
  const peek = () => tokens[at]
  const fail = (what: string): never => {
    throw new Error(what)
  }
  const primary = (): number => {
    const token = tokens[at++]
    if (token === undefined) return fail("unexpected end")
    if (token === "(") {
      const value = sum()
      if (tokens[at++] !== ")") fail("missing )")
      return value
    }
    if (token === "-") return -primary()
    if (token === "+") return primary()
    if (/^\d+$/.test(token)) return Number(token)
    if (/^[A-Za-z_]/.test(token)) return Math.trunc(Number(variable(token)) || 0)
    return fail(`unexpected ${token}`)
  }
  const product = (): number => {
    let value = primary()
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = tokens[at++]
      const right = primary()
      if (op !== "*" && right === 0) fail("division by zero")
      value = op === "*" ? value * right : op === "/" ? Math.trunc(value / right) : value % right
    }
    return value
  }
  const sum = (): number => {
    let value = product()
    while (peek() === "+" || peek() === "-") value = tokens[at++] === "+" ? value + product() : value - product()
    return value
  }
  try {
    const value = sum()
    if (at < tokens.length) fail(`unexpected ${tokens[at]}`)
    return { value }
  } catch (e) {
    return { error: `arithmetic: ${(e as Error).message} in "${expression}"` }
  }
}
