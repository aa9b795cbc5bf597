/**
 * Channel options shared by servers and clients: 32 MiB messages both ways and keepalive pings that notice a dead
 * peer within about 30 s, even on an idle connection.
 */
import type * as grpc from "@grpc/grpc-js"

export const maxMessageBytes = 32 * 1024 * 1024

export const defaults: grpc.ChannelOptions = {
  "grpc.max_send_message_length": maxMessageBytes,
  "grpc.max_receive_message_length": maxMessageBytes,
  "grpc.keepalive_time_ms": 20_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1
}
