/**
 * The part of `fs-native-extensions` (holepunch; prebuilt binaries, no install step) that `FileLock` uses: an
 * advisory lock on an open file description (`fcntl(F_OFD_SETLK)` on Linux, `flock` on macOS, `LockFileEx` on
 * Windows). The kernel drops it when the descriptor is closed, which includes the holder's death.
 */
declare module "fs-native-extensions" {
  /** Takes an exclusive lock on `fd` without waiting: `true` when taken, `false` when another holder has it. */
  export function tryLock(fd: number): boolean
}
