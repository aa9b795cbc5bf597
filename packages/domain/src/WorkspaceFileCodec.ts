/**
 * The text codec of the workspace store file (`ssh_workspaces.json`), for durable `WorkspaceStore` layers outside
 * this package: decoding names the file and the problem, encoding keeps unknown fields. The in-memory layer uses
 * the same codec, so both reject exactly the same files with the same messages.
 */
export { decode, encode } from "./internal/workspaceCodec.js"
