// The replay attacker as its own process (as a real one would be): `WhoAmI` with one credential, `count` times,
// one every `spacingMs`, up to 20 in flight. Prints {"codes":{code:n},"details":"<first refusal>","seconds":s}.
import * as grpc from "@grpc/grpc-js"

const [address, token, count, spacingMs] = process.argv.slice(2)
const Client = grpc.makeGenericClientConstructor(
  {
    whoAmI: {
      path: "/cmdop.connect.v1.ClientService/WhoAmI",
      requestStream: false,
      responseStream: false,
      requestSerialize: () => Buffer.alloc(0),
      requestDeserialize: (b) => b,
      responseSerialize: (b) => b,
      responseDeserialize: (b) => b
    }
  },
  "ClientService"
)
const client = new Client(address, grpc.credentials.createInsecure())
const metadata = new grpc.Metadata()
metadata.set("authorization", `Bearer ${token}`)
const codes = {}
let details = ""
const started = performance.now()
const call = () =>
  new Promise((resolve) =>
    client.whoAmI({}, metadata, (error) => {
      const code = error ? error.code : 0
      codes[code] = (codes[code] ?? 0) + 1
      if (error && details === "") details = error.details
      resolve()
    })
  )
let next = 0
const worker = async () => {
  while (next < Number(count)) {
    const i = next++
    const wait = started + i * Number(spacingMs) - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    await call()
  }
}
await Promise.all(Array.from({ length: 20 }, worker))
client.close()
process.stdout.write(JSON.stringify({ codes, details, seconds: (performance.now() - started) / 1000 }))
