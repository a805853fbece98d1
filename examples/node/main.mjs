// A department's system in JavaScript, reaching the xhub hub three ways
// with the one credential the hub issued it (exported with
// `xhub creds export FILE --pem DIR`):
//   1. JSON over HTTP (node's https, nothing else): list the catalog, query
//      a granted dataset, and see a query on a dataset without a grant
//      refused;
//   2. gRPC (@grpc/grpc-js, the .proto loaded at run time): the same query;
//   3. NATS (nats): the granted dataset's new records, already cut to the
//      grant, on the department's delivery subject. The subject carries
//      what is published while the example is connected: once it prints
//      "subscribed", publish XHUB_EXPECT records to XHUB_DATASET from the
//      owner's side (it says how), and it prints each and ends.
//
// Settings, from the environment:
//   XHUB_HUB       the hub's address, host:port (HTTP and gRPC share it)
//   XHUB_NATS      the hub's NATS port, host:port (xhub serve --nats-listen)
//   XHUB_PEM_DIR   the directory with cert.pem, key.pem, ca.pem
//   XHUB_DEPT      this department's id
//   XHUB_DATASET   a dataset this department holds a grant on
//   XHUB_DENIED    a dataset it holds no grant on
//   XHUB_EXPECT    how many records to wait for over NATS (default 2)
//   XHUB_WAIT      how many seconds to wait for them (default 600)
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { connect, StringCodec } from 'nats';

function setting(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
}

const hub = setting('XHUB_HUB');
const natsAddr = setting('XHUB_NATS');
const pemDir = setting('XHUB_PEM_DIR');
const dept = setting('XHUB_DEPT');
const dataset = setting('XHUB_DATASET');
const denied = setting('XHUB_DENIED');
const expect = Number(process.env.XHUB_EXPECT || 2);
const wait = Number(process.env.XHUB_WAIT || 600);
const [host, port] = [hub.slice(0, hub.lastIndexOf(':')), Number(hub.slice(hub.lastIndexOf(':') + 1))];
const file = (name) => path.join(pemDir, name);
const tls = { cert: fs.readFileSync(file('cert.pem')), key: fs.readFileSync(file('key.pem')), ca: fs.readFileSync(file('ca.pem')) };

// Give up, loudly, rather than hang.
let giveUp = setTimeout(() => { console.error('timed out before subscribing'); process.exit(1); }, 60_000);
giveUp.unref();

// post calls one method of the xhub API as JSON over HTTPS: a POST of a
// JSON body to /xhub.v1.<Service>/<Method>, as curl does.
function post(method, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = https.request({
      host, port, method: 'POST', path: `/xhub.v1.${method}`, ...tls,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        try { resolve({ status: res.statusCode, json: JSON.parse(text) }); } catch (e) { reject(new Error(`${method}: HTTP ${res.statusCode}: ${text}`)); }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

// 1. The catalog, over JSON.
const catalog = await post('Catalog/ListDatasets', {});
if (catalog.status !== 200) throw new Error(`catalog: HTTP ${catalog.status}: ${JSON.stringify(catalog.json)}`);
console.log(`catalog: ${catalog.json.total} datasets: ${catalog.json.datasets.map((d) => `${d.id} (${d.shareType})`).join(', ')}`);

// A granted dataset, over JSON: records are JSON objects.
const q = await post('Exchange/Query', { dataset, limit: 10 });
if (q.status !== 200) throw new Error(`query: HTTP ${q.status}: ${JSON.stringify(q.json)}`);
const records = q.json.records || [];
console.log(`query over JSON: ${records.length} records, fields ${fieldsOf(records)}, withheld ${q.json.withheld || 0}`);

// A dataset without a grant: refused, with the reason.
const refused = await post('Exchange/Query', { dataset: denied, limit: 1 });
console.log(`refused: HTTP ${refused.status} ${refused.json.code}: ${refused.json.message}`);

// 2. The same query over gRPC.
const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(path.join(here, '../../proto/xhub/v1/xhub.proto'), { defaults: true, oneofs: true, longs: String });
const xhub = grpc.loadPackageDefinition(def).xhub.v1;
const exchange = new xhub.Exchange(hub, grpc.credentials.createSsl(tls.ca, tls.key, tls.cert));
const g = await new Promise((resolve, reject) => {
  exchange.Query({ dataset, limit: 10 }, (err, res) => (err ? reject(err) : resolve(res)));
});
const grpcRecords = g.records.map((b) => JSON.parse(b.toString('utf8')));
console.log(`query over gRPC: ${grpcRecords.length} records, fields ${fieldsOf(grpcRecords)}`);
exchange.close();

// 3. New records over NATS, on this department's delivery subject.
const nc = await connect({
  servers: `tls://${natsAddr}`,
  tls: { certFile: file('cert.pem'), keyFile: file('key.pem'), caFile: file('ca.pem') },
});
const subject = `xhub.out.${dept}.${dataset}`;
const sub = nc.subscribe(subject, { max: expect });
await nc.flush();
console.log(`subscribed: ${subject}`);
console.log(`waiting ${wait}s for ${expect} records: publish them to ${dataset} now, as its owner does, for example`);
console.log(`  xhub --creds OWNER-SYSTEM.creds publish ${dataset} --file records.jsonl`);
clearTimeout(giveUp);
giveUp = setTimeout(() => {
  console.error(`timed out: fewer than ${expect} records reached ${subject} in ${wait}s (were they published to ${dataset} after "subscribed"?)`);
  process.exit(1);
}, wait * 1000);
giveUp.unref();
const sc = StringCodec();
for await (const m of sub) {
  console.log(`nats: ${sc.decode(m.data)}`);
}
await nc.close();
console.log('done');

function fieldsOf(rs) {
  const names = new Set();
  for (const r of rs) Object.keys(r).forEach((k) => names.add(k));
  return [...names].sort().join(',');
}
