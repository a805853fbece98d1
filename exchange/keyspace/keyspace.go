// Package keyspace is the layout of the control plane's views in Badger:
// every key prefix, the package that owns it and what it holds, in one
// table (Spaces), as internal/bus/layout.go is for the streams. An owner
// makes its keys only from its own prefixes here; no prefix is the
// start of another, so a scan of one keyspace never reads another's keys
// (TestSpaces); and every key a replay of the log writes lies under
// exactly one prefix (exchange's TestEveryKeyInOneSpace).
//
// The views are a function of the log, and their encoding is Format: a
// change of a prefix, or of how a view is written, is a new Format, and a
// node whose views were written in another one rebuilds them from the log
// when it starts (exchange.Open).
package keyspace

// Prefix is the start of every key of one keyspace.
type Prefix string

// Key is the key of id in the keyspace.
func (p Prefix) Key(id string) string { return string(p) + id }

// The prefixes, by owner.
const (
	// exchange (controlplane.go, integrity.go): the applied sequence,
	// the last entry's leaf hash, the hub's init, the views' format.
	Meta Prefix = "m/"
	// exchange: every applied entry's raw bytes, by sequence (8 bytes,
	// big-endian).
	Entries Prefix = "e/"
	// exchange (tree.go): the Merkle tree's stored hashes, by index.
	TreeHashes Prefix = "h/"
	// exchange (identity.go): issued credentials, by serial.
	Credentials Prefix = "c/"
	// exchange (requests.go): the entry of each client request id, by
	// a hash of the caller and the id.
	RequestIDs Prefix = "rid/"
	// exchange (nodes.go): join tokens, by id.
	JoinTokens Prefix = "nt/"

	// catalog: departments, by id.
	Departments Prefix = "d/"
	// catalog: each department's webhook.
	Webhooks Prefix = "dwh/"
	// catalog: datasets, by id.
	Datasets Prefix = "ds/"

	// schemas: schema subjects, by subject.
	Subjects Prefix = "s/"
	// schemas: schema versions, by subject and version.
	SchemaVersions Prefix = "sv/"

	// exchange/shares: share requests, by sequence.
	ShareRequests Prefix = "rq/"
	// exchange/shares: pending requests, by dataset and sequence.
	PendingByDataset Prefix = "rqd/"
	// exchange/shares: grants, by sequence.
	Grants Prefix = "gr/"
	// exchange/shares: grants, by dataset and sequence.
	GrantsByDataset Prefix = "grd/"
	// exchange/shares: data disputes, by sequence.
	Disputes Prefix = "dp/"
	// exchange/shares: open disputes, by opening department and sequence.
	OpenDisputes Prefix = "dpo/"
)

// Space is one keyspace: its prefix, the package that owns it, and what
// it holds.
type Space struct {
	Prefix Prefix
	Owner  string
	Holds  string
}

// Spaces are every keyspace of the views.
var Spaces = []Space{
	{Meta, "exchange", "applied sequence, last leaf hash, hub init, views format"},
	{Entries, "exchange", "raw entries by sequence"},
	{TreeHashes, "exchange", "Merkle tree stored hashes"},
	{Credentials, "exchange", "credentials by serial"},
	{RequestIDs, "exchange", "the entry of each caller's request id"},
	{JoinTokens, "exchange", "join tokens"},
	{Departments, "catalog", "departments"},
	{Webhooks, "catalog", "department webhooks"},
	{Datasets, "catalog", "datasets"},
	{Subjects, "schemas", "schema subjects"},
	{SchemaVersions, "schemas", "schema versions"},
	{ShareRequests, "exchange/shares", "share requests"},
	{PendingByDataset, "exchange/shares", "pending requests by dataset"},
	{Grants, "exchange/shares", "grants"},
	{GrantsByDataset, "exchange/shares", "grants by dataset"},
	{Disputes, "exchange/shares", "disputes"},
	{OpenDisputes, "exchange/shares", "open disputes by department"},
}

// Of is the keyspace of key (ok false: none).
func Of(key string) (Space, bool) {
	for _, s := range Spaces {
		if len(key) >= len(s.Prefix) && key[:len(s.Prefix)] == string(s.Prefix) {
			return s, true
		}
	}
	return Space{}, false
}

// Format is the version of the views' encoding. Format 1 (views with no
// format recorded) kept client request ids under "rq/", among the share
// requests; 2 moved them to RequestIDs.
const Format = 2

// FormatKey is where the views record their Format.
var FormatKey = Meta.Key("format")
