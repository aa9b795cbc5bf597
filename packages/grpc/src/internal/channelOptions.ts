/**
 * Channel options shared by servers and clients: 32 MiB messages both ways and keepalive pings that notice a dead
 * peer within about 30 s, even on an idle connection.
 */
import type * as grpc from "@grpc/grpc-js"

export const maxMessageBytes = 32 * 1024 * 1024

/** HTTP/2 flow-control window (per stream and per connection), both directions. */
export const flowControlWindow = 8 * 1024 * 1024

/**
 * grpc-js has no server option for the HTTP/2 window, so we set it where grpc-js builds its http2 servers: the
 * initial stream window in the settings it passes to `http2.createServer`, and the connection window on every
 * new session. Relies on grpc-js internals (`commonServerOptions`, `http2Servers`), checked here so a grpc-js
 * upgrade that moves them only loses the tuning, never breaks the server.
 */
export const tuneServerBeforeBind = (server: object): void => {
  const internals = server as { commonServerOptions?: { settings?: Record<string, unknown> } }
  if (internals.commonServerOptions !== undefined)
    internals.commonServerOptions.settings = {
      ...internals.commonServerOptions.settings,
      initialWindowSize: flowControlWindow
    }
}

export const tuneServerAfterBind = (server: object): void => {
  const internals = server as { http2Servers?: Map<{ on: (event: string, f: (s: unknown) => void) => void }, unknown> }
  for (const http2Server of internals.http2Servers?.keys() ?? []) {
    http2Server.on("session", (session) => {
      const s = session as { setLocalWindowSize?: (size: number) => void }
      try {
        s.setLocalWindowSize?.(flowControlWindow)
      } catch {
        // A session that is already closing cannot be tuned; nothing to do.
      }
    })
  }
}

export const defaults: grpc.ChannelOptions = {
  "grpc.max_send_message_length": maxMessageBytes,
  "grpc.max_receive_message_length": maxMessageBytes,
  "grpc.keepalive_time_ms": 20_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  // channelz bookkeeping costs ~1 ms per call on the relay and nobody reads it.
  "grpc.enable_channelz": 0,
  // HTTP/2's default 64 KiB window caps a stream at one window per round trip; bulk output (exec of a large file)
  // needs far more in flight. Clients take this option; servers get it through `tuneServer`.
  "grpc-node.flow_control_window": flowControlWindow
}
