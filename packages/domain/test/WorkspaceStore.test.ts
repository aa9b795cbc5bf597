import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { makeMemory } from "@cmdop/domain/WorkspaceStore"
import { workspaceStoreContract } from "@cmdop/domain/testing/WorkspaceStoreContract"

// The in-memory twin: one shared text cell stands for the file; each instance is a separate "process".
workspaceStoreContract("memory", (initial) =>
  Effect.gen(function* () {
    const cell = yield* Ref.make(initial)
    return {
      store: yield* makeMemory(cell),
      readRaw: Ref.get(cell),
      writeRaw: (text) => Ref.set(cell, text),
      reopen: makeMemory(cell)
    }
  })
)
