/** Loads the gate's shell parser once per test file, as `PolicyStore` does at agent start. */
import { Effect } from "effect"
import { warmUp } from "../src/Reader.js"

await Effect.runPromise(warmUp)
