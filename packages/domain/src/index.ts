/**
 * @cmdop/domain: the typed core shared by the CLI, the agent, the relay and embedding programs. Schemas, errors,
 * service tags, pure logic and in-memory layers; nothing here touches the OS.
 */
export * as AccessError from "./AccessError.js"
export * as AgentLink from "./AgentLink.js"
export * as Age from "./Age.js"
export * as ApiKey from "./ApiKey.js"
export * as Machine from "./Machine.js"
export * as MachineError from "./MachineError.js"
export * as RelayError from "./RelayError.js"
export * as Secret from "./Secret.js"
export * as Workspace from "./Workspace.js"
export * as WorkspaceError from "./WorkspaceError.js"
export * as WorkspaceStore from "./WorkspaceStore.js"
export * as WorkspaceStoreError from "./WorkspaceStoreError.js"
export * as CredentialError from "./CredentialError.js"
export * as CredentialResolver from "./CredentialResolver.js"
export * as OAuthSession from "./OAuthSession.js"
export * as RelayClient from "./RelayClient.js"
export * as ShareLink from "./ShareLink.js"
export * as ShareError from "./ShareError.js"
export * as ShareService from "./ShareService.js"
export * as ShareTtl from "./ShareTtl.js"
