/** Shared test helpers: a policy from text, and short request builders. */
import { Either } from "effect"
import type { Decision } from "../src/Decide.js"
import { decide } from "../src/Decide.js"
import type { Policy } from "../src/Policy.js"
import { parsePolicy } from "../src/PolicyFile.js"
import type { Caller } from "../src/Request.js"

export const policyOf = (text: string, file = "/etc/cmdop/permissions.yaml"): Policy => {
  const parsed = parsePolicy(text, file)
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message)
  return parsed.right
}

/** The issue's example file. */
export const ISSUE_EXAMPLE = `# ~/.cmdop/permissions.yaml
default:                 # when no rule matches, per caller kind
  key: allow
  user: allow
  guest: deny
rules:
  - action: allow
    caller: guest        # key | user | guest
    mode: exec           # exec | shell | attach (omitted: any)
    command: ["uptime", "ls *", "journalctl -u nginx *"]
  - action: ask
    caller: guest
    command: "systemctl restart *"
  - action: deny
    user: "*@contractor.example"
    mode: shell
`

export const guest: Caller = { kind: "guest", shareId: "shr_1" }
export const key: Caller = { kind: "key", name: "ci" }

export const exec = (policy: Policy | undefined, caller: Caller, ...argv: ReadonlyArray<string>): Decision =>
  decide(policy, { caller, mode: "exec", argv })

export const line = (policy: Policy | undefined, caller: Caller, script: string): Decision =>
  decide(policy, { caller, mode: "exec", argv: [script], shell: true })
