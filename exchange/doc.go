// Package exchange owns what happens between departments: the
// control-plane log and the state it materialises (departments,
// credentials, schema subjects, the catalog, share requests, grants and
// their expiry). Each subject owns its state machine — its entry kinds,
// view keys, the check of a command against current state and a pure
// apply: package catalog (departments, datasets; rules.go, state.go),
// package schemas (subjects, versions), package exchange/shares (requests,
// grants; rules.go, state.go), and identity.go here (the hub's init,
// credentials). This package checks who may give a command, runs the
// subject's check in the node's appender, which drafts the commands
// waiting in one discarded transaction and appends them as one group
// (groupcommit.go), and runs the state machines from the log (entries.go
// lists every kind). Its other
// sub-packages own the rest: exchange/ledger the entry format, the Merkle
// tree and the pure verifier; exchange/dataplane the routing of queries
// and records and the audit of every data access; exchange/vocab the
// client-safe vocabulary (identities, filters, the creds file) that the
// SDK shares with the hub.
//
// # The control plane is a log
//
// Every control-plane change is an Entry (package exchange/ledger)
// appended to a Log: in a hub, bus.LedgerLog on the JetStream stream
// XHUB_LEDGER; in the rule scripts under testdata/, a log in memory.
// Nothing else writes the views. A change goes through
// ControlPlane.submit:
//
//  1. In a Badger read snapshot, read the last applied sequence N and the
//     leaf hash of entry N, and validate the command against that state
//     (does the department exist? is the schema compatible? may this
//     officer act for that department?).
//  2. Build entry N+1 naming entry N's hash as Prev, and publish it with
//     JetStream's expected-last-sequence = N.
//  3. If another node appended first, JetStream refuses; this node waits
//     until its apply loop has caught up with the stream, and starts again
//     at 1, re-validating against the new state. So the order is one order
//     for every node, and a command is never applied on a state it was not
//     checked against.
//  4. Wait until this node has applied N+1, then return N+1 to the caller.
//
// The apply loop follows the stream with an ordered consumer from the
// last applied sequence and applies entries in batches: one Badger
// transaction per batch, holding the views, the raw entries, the Merkle
// tree hashes (golang.org/x/mod/sumdb/tlog) and the applied sequence, so a
// restart neither skips nor applies twice. Apply is deterministic: every
// node that applies the same entries holds the same views. An entry that
// no longer fits the state (which expected-last-sequence should make
// impossible) is kept in the log and the tree but has no effect, the same
// on every node.
//
// A call may carry a client request id (WithRequestID). It goes into the
// entry the call appends, and applying the entry records it under the
// caller, so the same call retried — after a timeout, or on another node —
// is answered from its entry instead of appending another (requests.go).
// An append whose answer never came (the stream's leader moving) is
// treated the same way: catch up, validate again, find it.
//
// Node membership is a subject too (nodes.go): join tokens and joins are
// entries, so who added which hub node, when, is in the verifiable log.
//
// Reads take a min_seq: they wait, bounded by Config.ReadWait, until the
// node has applied that entry, so a client reads its own writes on any
// node. Badger needs no per-transaction fsync: it can always be rebuilt
// from the stream.
//
// # The views are checked against the log
//
// What a node enforces must be a function of the verified log. When Open
// starts a node on existing views, it replays the log up to the applied
// sequence into a store in memory — checking that every entry is the one
// the node's Merkle tree committed to and chains to its predecessor — and
// compares the result key by key with Badger (integrity.go). On a
// difference the node applies nothing, appends nothing, and Integrity
// returns an *IntegrityError naming the entry and the view; the API then
// serves only the ledger. A malformed or unchained entry arriving later
// stops apply the same way. Applying an entry that ends access (a grant
// revoked or expired, a dataset retired, a credential revoked) closes the
// AccessEnded channel, on which open streams and the data plane's cleanup
// wait instead of polling.
//
// Every key of the views is under one prefix of package
// exchange/keyspace, the table of who owns which prefix and what it
// holds. The views record the format they were written in
// (keyspace.Format); a node that finds views of another format — after
// an upgrade that moved a prefix — rebuilds them at start from the log,
// checked against its own Merkle tree as above, and logs both formats.
//
// # Sharing
//
// A share request (share.requested) names the requester, the dataset, the
// fields (empty: all), a purpose and a duration. An open dataset's request
// is granted at once by a second entry whose actor is the open-sharing
// policy (grant.created); if a node stops between the two, any node's
// sweeper grants it later. A conditional request waits for the owner's
// officer: share.approved (creating the grant, possibly narrowed) or
// share.rejected (reason required); the requester may withdraw it. A grant
// ends by grant.revoked (reason required), by grant.expired (appended by
// whichever node's sweeper wins the append race; the others re-validate and
// find nothing to do), or when its dataset is retired. Ids are the
// sequence of the entry that made them: r-<seq>, g-<seq>.
//
// CheckAccess answers "may department G read dataset D, which fields" from
// an in-memory index that the apply loop changes only after the matching
// Badger transaction commits; it compares each grant's expiry with the
// clock on every call, so no cache and no missing expiry entry can extend
// a grant.
//
// The rules of sharing are tested as scripts (testdata/shares, run by
// TestShareRules): commands, the entries they append, and the state they
// leave, with no hub started.
//
// # Tamper evidence
//
// Entries are the leaves of an RFC 6962 Merkle tree whose stored hashes
// the apply loop writes beside the views. The hub signs tree heads with its
// ed25519 ledger key (signed notes); TreeHead, InclusionProof and
// ConsistencyProof serve what a department needs to check, with the pure
// checks in package exchange/ledger.
//
// # Identity
//
// Actors are vocab.Identities, spiffe://xhub/dept/<dept>/<role>/<name>, taken
// from mTLS client certificates by the API layer. The roles are admin (the
// hub operator, department "hub"), officer and system. Authorisation that
// depends on state — an officer acts only for its own department — is
// checked here, inside the command, against the same snapshot.
package exchange
