// Messages from the dynamic-provider process to the operator's terminal. The provider has no
// logging channel of its own, but the engine passes its address as the process's first argument;
// its Log RPC puts a line into the run's output. Best effort: a failure to log is not an error.
let client: any;

function engineClient(): any {
  if (client !== undefined) return client;
  const address = process.argv[2];
  if (!address || !/^[\w.-]+:\d+$/.test(address)) return (client = null);
  const grpc = require("@grpc/grpc-js");
  const engrpc = require("@pulumi/pulumi/proto/engine_grpc_pb");
  client = new engrpc.EngineClient(address, grpc.credentials.createInsecure());
  return client;
}

export function engineWarn(message: string): void {
  try {
    const c = engineClient();
    if (!c) {
      process.stderr.write(`hostnet: ${message}\n`);
      return;
    }
    const engproto = require("@pulumi/pulumi/proto/engine_pb");
    const req = new engproto.LogRequest();
    req.setSeverity(engproto.LogSeverity.WARNING);
    req.setMessage(message);
    c.log(req, () => undefined);
  } catch {
    // logging must never break a deployment
  }
}
