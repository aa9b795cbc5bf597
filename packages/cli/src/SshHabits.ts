/**
 * ssh's options, typed out of habit at `cmdop connect`: what cmdop does instead, in one line, where a "did you mean"
 * by spelling would only guess (`-t` is one edit from `-k`, and means nothing like it).
 */

const TERMINAL = "cmdop connect <host> always gives the shell a terminal, and exec never gives one; drop it"

const HABITS: Readonly<Record<string, string>> = {
  "-t": TERMINAL,
  "-tt": TERMINAL,
  "-T": TERMINAL,
  "-p": "machines are reached by name through the relay, not by port; the relay's own address is --server/-s host:port",
  "-l": "a session runs as the user of the machine's agent; there is no login name to give",
  "-i": "the relay checks an API key (--api-key/-k, CMDOP_API_KEY) or a login (cmdop login), not an identity file",
  "-A": "there is no agent forwarding: sessions never see your keys",
  "-L": "there is no port forwarding (yet)",
  "-R": "there is no port forwarding (yet)",
  "-D": "there is no port forwarding (yet)",
  "-N": "there is no port forwarding (yet)",
  "-X": "there is no X11 forwarding",
  "-Y": "there is no X11 forwarding",
  "-o": "there are no -o options; every setting is a flag (see --help)",
  "-F": "there is no config file for connections; workspaces hold the key and relay (cmdop connect workspace --help)",
  "-v": "there is no verbose mode; --json prints everything a call returns",
  "-C": "there is no compression flag"
}

/** What cmdop does instead of ssh's `flag`, when `flag` is one of ssh's options it does not take. */
export const hint = (flag: string): string | undefined => HABITS[flag.split("=")[0]!]

/** Whether `flag` is a single-letter option (`-t`): spelling suggestions are noise for those. */
export const isShort = (flag: string): boolean => /^-[^-]$/.test(flag.split("=")[0]!)
