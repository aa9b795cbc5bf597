/**
 * @cmdop/node: the Node-backed live layers (files under `~/.cmdop`, locks, atomic writes, the C heap's
 * trim, starting programs with `posix_spawn`).
 */
export * as AtomicFile from "./AtomicFile.js"
export * as CmdopPaths from "./CmdopPaths.js"
export * as FileLock from "./FileLock.js"
export * as HeapTrim from "./HeapTrim.js"
export * as WorkspaceStoreLive from "./WorkspaceStoreLive.js"
export * as Pid from "./Pid.js"
export * as PosixSpawn from "./PosixSpawn.js"
