// Package vocab is the client-safe vocabulary that the SDK, the CLI and
// the hub share: who acts (Identity, Role, in SPIFFE form), the one filter
// language of queries (Filter, its parser, its checks against a dataset's
// fields and its match on a record), and the creds file format (Creds:
// certificate, key, CA, hub address and pinned ledger key); the ids of
// departments and datasets (DeptID, DatasetID, Field); the error kinds
// every layer shares (Error, Kind, Invalid, NotFound, …; fault.go); and the
// exact reading of a JSON number's text (Number; number.go). It is a leaf:
// it imports nothing of xhub, and nothing of the server (no NATS, no
// Badger, no gRPC).
package vocab
