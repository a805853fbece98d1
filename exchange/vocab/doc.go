// Package vocab is the client-safe vocabulary that the SDK, the CLI and
// the hub share: who acts (Identity, Role, in SPIFFE form), the one filter
// language of queries (Filter, its parser, its checks against a dataset's
// fields and its match on a record), and the creds file format (Creds:
// certificate, key, CA, hub address and pinned ledger key). It depends on
// the catalog's ids and the error kinds, nothing of the server: no NATS,
// no Badger, no gRPC.
package vocab
