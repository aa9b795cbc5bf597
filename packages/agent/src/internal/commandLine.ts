/**
 * The argv an exec spec runs: its own (`argv[0]` looked up on PATH), or with `shell` set the words joined with spaces
 * under the user's shell: `[$SHELL or /bin/sh, "-c", joined]`, `$SHELL` from the command's environment.
 */
export const commandLine = (
  spec: { readonly argv: ReadonlyArray<string>; readonly shell: boolean },
  shellVariable: string | undefined
): ReadonlyArray<string> => (spec.shell ? [shellVariable || "/bin/sh", "-c", spec.argv.join(" ")] : spec.argv)
