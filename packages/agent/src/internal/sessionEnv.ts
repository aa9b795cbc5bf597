/**
 * What a session's programs inherit from the agent. The agent's environment goes on (PATH, HOME, LANG, …) except the
 * agent's own secrets: `cmdop agent start -k KEY` hands the daemon its workspace key as CMDOP_API_KEY, and `cmdop up`
 * runs the agent in the relay's process (its database URL, cluster and single sign-on secrets). A remote command —
 * a share-link guest's included — would otherwise read the workspace key with `env`.
 */
export const AGENT_SECRETS: ReadonlyArray<string> = [
  "CMDOP_API_KEY",
  "CMDOP_CLUSTER_SECRET",
  "CMDOP_OIDC_CLIENT_SECRET",
  "CMDOP_RELAY_DB"
]

/** `env` (the agent's `process.env`) as a plain record, without the agent's secrets. */
export const withoutAgentSecrets = (env: NodeJS.ProcessEnv): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value
  for (const key of AGENT_SECRETS) delete out[key]
  return out
}
