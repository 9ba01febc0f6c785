// A partner written in Node.js: one Search over mTLS with the given purpose, using only the
// protos LEIS ships (protos/, google.rpc under protos/third_party). Prints one JSON line: the
// status code, and from a refusal the google.rpc.ErrorInfo reason and domain decoded from the
// grpc-status-details-bin trailer, with the leis-trace-id and leis-audit-reference trailers.
//
//   node read_error_info.js <address> <protos dir> <ca.crt> <client.crt> <client.key> <purpose> <ori>
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const [address, protos, ca, cert, key, purpose, ori] = process.argv.slice(2);
const includeDirs = [protos, path.join(protos, "third_party")];

const definition = protoLoader.loadSync("leis/v1/query_service.proto", { includeDirs, enums: String, keepCase: true });
const QueryService = grpc.loadPackageDefinition(definition).leis.v1.QueryService;

const rpc = new protobuf.Root();
rpc.resolvePath = (origin, target) => {
  for (const dir of includeDirs) {
    const candidate = path.join(dir, target);
    if (fs.existsSync(candidate)) return candidate;
  }
  return target; // google/protobuf/*: protobufjs's own well-known types
};
rpc.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = rpc.lookupType("google.rpc.Status");
const ErrorInfo = rpc.lookupType("google.rpc.ErrorInfo");

const credentials = grpc.credentials.createSsl(
  fs.readFileSync(ca), fs.readFileSync(key), fs.readFileSync(cert)
);
const client = new QueryService(address, credentials);
const request = {
  subject: { name: { first_name: "Ana", last_name: "Ruiz" } },
  purpose,
  end_user: { user_id: "node.partner", ori },
};
const deadline = new Date(Date.now() + 10000);
client.Search(request, { deadline }, (err, response) => {
  const out = {};
  if (!err) {
    out.code = "OK";
    out.audit_reference = response.audit_reference;
  } else {
    out.code = Object.keys(grpc.status).find((name) => grpc.status[name] === err.code);
    const [details] = err.metadata.get("grpc-status-details-bin");
    if (details) {
      const status = Status.decode(details);
      for (const any of status.details) {
        if ((any.type_url || any.typeUrl).endsWith("/google.rpc.ErrorInfo")) {
          const info = ErrorInfo.decode(any.value);
          out.reason = info.reason;
          out.domain = info.domain;
        }
      }
    }
    out.trace_id = String(err.metadata.get("leis-trace-id")[0] || "");
    out.audit_reference = String(err.metadata.get("leis-audit-reference")[0] || "");
  }
  console.log(JSON.stringify(out));
  client.close();
});
