/**
 * @cmdop/relay: the relay server (`cmdop relay serve`) as composable layers.
 */
export * as RelayStore from "./RelayStore.js"
