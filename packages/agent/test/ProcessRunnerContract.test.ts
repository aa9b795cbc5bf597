/**
 * One contract, two runners: the live one (real processes, a short kill grace) and the in-memory twin.
 */
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as ProcessRunnerMemory from "@cmdop/agent/ProcessRunnerMemory"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import { contract } from "./ProcessRunnerContract.js"

contract("live processes", Layer.effect(ProcessRunner.ProcessRunner, ProcessRunner.make({ killGrace: "300 millis" })), {
  home: fs.realpathSync(os.homedir())
})

// The daemon's runner: a command that a warm shell can start is `exec`ed by one (internal/warmShells.ts); with a
// short quiet time, nearly every command here finds one.
contract(
  "live processes, warm shell",
  Layer.scoped(
    ProcessRunner.ProcessRunner,
    ProcessRunner.makeWarm({ killGrace: "300 millis", warmShellQuiet: "1 millis" })
  ),
  { home: fs.realpathSync(os.homedir()) }
)

// The daemon's runner once koffi has bound `posix_spawn` (`@cmdop/node/PosixSpawn`): no fork of the agent.
contract(
  "live processes, posix_spawn",
  Layer.effect(ProcessRunner.ProcessRunner, ProcessRunner.makeDirect({ killGrace: "300 millis" })),
  { home: fs.realpathSync(os.homedir()) }
)

contract("in memory", ProcessRunnerMemory.layer, { home: "/home/memory" })
