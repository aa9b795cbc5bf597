/** `cmdop relay …`: serving a relay and administering its store on the relay host. */
import { STORE_FLAGS, type Node } from "./parts.js"

export const relayNode: Node = {
  name: "relay",
  help: "run a relay and administer its workspaces, keys, users and signing keys (on the relay host)",
  subcommands: [
    {
      name: "serve",
      help: "run the relay",
      flags: [
        ...STORE_FLAGS,
        { name: "--host", value: "ADDR", help: "interface to listen on (0.0.0.0 to serve other machines)" },
        {
          name: "--grpc-port",
          value: "PORT",
          integer: true,
          port: true,
          help: "gRPC port for agents and clients (50051)"
        },
        {
          name: "--http-port",
          value: "PORT",
          integer: true,
          port: true,
          help: "HTTP port: share pages, health, metrics (8080)"
        },
        { name: "--public-url", value: "URL", help: "base URL share links point at" },
        { name: "--tls-cert", value: "FILE", help: "PEM certificate chain; serve TLS" },
        { name: "--tls-key", value: "FILE", help: "PEM private key for --tls-cert" },
        {
          name: "--max-connections-per-source",
          value: "N",
          integer: true,
          help: "gRPC connections one address may hold (1024); behind a load balancer or NAT every agent shares its address: raise it above the agent count (env CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE)"
        },
        { name: "--oidc-issuer", value: "URL", help: "single sign-on: the OpenID Connect provider's issuer URL" },
        { name: "--oidc-client-id", value: "ID", help: "single sign-on: this relay's client id at the provider" },
        {
          name: "--oidc-client-secret",
          value: "SECRET",
          help: "single sign-on: the client secret (env CMDOP_OIDC_CLIENT_SECRET)"
        },
        { name: "--node-id", value: "ID", help: "cluster mode (with --db): this node's id (default: host name)" },
        { name: "--peer-address", value: "HOST:PORT", help: "cluster mode: where the other nodes reach this one" },
        {
          name: "--peer-port",
          value: "PORT",
          integer: true,
          port: true,
          help: "cluster mode: the peer service's port (grpc port + 1)"
        },
        {
          name: "--advertise-address",
          value: "HOST:PORT",
          help: "cluster mode: where agents reach this node, told to them as a failover hint (env CMDOP_RELAY_ADVERTISE_ADDRESS)"
        },
        {
          name: "--cluster-secret",
          value: "SECRET",
          help: "cluster mode: the secret the nodes share (env CMDOP_CLUSTER_SECRET)"
        }
      ],
      notes: [
        "Behind a TCP load balancer or NAT every agent reaches the relay from one address: pass",
        "--max-connections-per-source above the number of agents there, and give the relay the descriptors",
        "(ulimit -n, LimitNOFILE): the gRPC port may hold about three quarters of the limit in all."
      ]
    },
    {
      name: "workspace",
      help: "workspaces on the relay",
      subcommands: [
        {
          name: "create",
          help: "create a workspace; prints its first API key, once",
          args: [{ name: "workspace" }],
          flags: STORE_FLAGS
        },
        { name: "list", help: "every workspace: id, created, key generation, machines", flags: STORE_FLAGS }
      ]
    },
    {
      name: "key",
      help: "workspace API keys on the relay",
      subcommands: [
        {
          name: "rotate",
          help: "a new key; the old one and its share links stop working",
          args: [{ name: "workspace" }],
          flags: STORE_FLAGS
        },
        {
          name: "list",
          help: "a workspace's live API keys, masked",
          args: [{ name: "workspace" }],
          flags: STORE_FLAGS
        },
        {
          name: "create",
          help: "one more named API key, printed once; the others stay",
          args: [{ name: "workspace" }, { name: "name" }],
          flags: STORE_FLAGS
        },
        {
          name: "revoke",
          help: "revoke one API key (by name or id): its next call is refused",
          args: [{ name: "workspace" }, { name: "key" }],
          flags: STORE_FLAGS
        }
      ]
    },
    {
      name: "user",
      help: "people on the relay",
      subcommands: [
        {
          name: "add",
          help: "add a person to a workspace (or change their role); prints a one-time sign-in link",
          args: [{ name: "email" }],
          flags: [
            ...STORE_FLAGS,
            { name: "--workspace", value: "NAME", help: "the workspace on this relay (created if new)" },
            {
              name: "--role",
              value: "ROLE",
              choices: ["owner", "member", "viewer"],
              help: "owner, member or viewer (changes the role of a member)"
            },
            { name: "--public-url", value: "URL", help: "the relay's public URL the link points at" }
          ]
        },
        {
          name: "remove",
          help: "remove a person from a workspace: their next call is refused",
          args: [{ name: "email" }],
          flags: [...STORE_FLAGS, { name: "--workspace", value: "NAME", help: "the workspace on this relay" }]
        },
        {
          name: "disable",
          help: "sign a person out everywhere and refuse their logins",
          args: [{ name: "email" }],
          flags: STORE_FLAGS
        },
        {
          name: "enable",
          help: "let a disabled person sign in again",
          args: [{ name: "email" }],
          flags: STORE_FLAGS
        }
      ]
    },
    {
      name: "signing-key",
      help: "the keys that sign share links",
      subcommands: [
        { name: "rotate", help: "a new signing key", flags: STORE_FLAGS },
        { name: "retire", help: "retire a signing key", args: [{ name: "kid" }], flags: STORE_FLAGS },
        { name: "list", help: "the signing keys: current, still valid, retired", flags: STORE_FLAGS }
      ]
    }
  ]
}
