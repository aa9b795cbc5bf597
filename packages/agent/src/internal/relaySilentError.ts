/** The error `AgentEngine.serve` fails with when the relay falls silent. */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"

/** The relay sent nothing (not even a heartbeat) for too long; the daemon treats the stream as dead. */
export class RelaySilentError extends Data.TaggedError("RelaySilentError")<{ readonly timeout: Duration.Duration }> {
  override get message(): string {
    return `the relay sent nothing for ${Duration.format(this.timeout)}`
  }
}
