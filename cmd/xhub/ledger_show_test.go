package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// rfc9162Root recomputes a Merkle root from a leaf hash and its audit
// path as RFC 9162 §2.1.3.2 says (RFC 6962's tree, verification written
// out), with nothing of xhub: SHA-256, 0x01 before interior nodes.
func rfc9162Root(leafIndex, treeSize uint64, leafHash []byte, path [][]byte) ([]byte, bool) {
	if leafIndex >= treeSize {
		return nil, false
	}
	fn, sn, r := leafIndex, treeSize-1, leafHash
	node := func(l, r []byte) []byte {
		h := sha256.New()
		h.Write([]byte{1})
		h.Write(l)
		h.Write(r)
		return h.Sum(nil)
	}
	for _, p := range path {
		if sn == 0 {
			return nil, false
		}
		if fn&1 == 1 || fn == sn {
			r = node(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = node(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return r, sn == 0
}

// TestLedgerReadable: what a decision said is readable (log summaries,
// filters, show), and a department checks an entry's proof with the RFC's
// algorithm and no xhub code.
func TestLedgerReadable(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	req, _ := ids(mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "relief checks", "--fields", "id,ward", "--days", "30"))
	mustX(t, env, f.health, "share", "approve", req, "--fields", "id", "--reason", "ward not needed")
	req2, _ := ids(mustX(t, env, f.police, "share", "request", "health.cond", "--purpose", "curiosity"))
	mustX(t, env, f.health, "share", "reject", req2, "--reason", "no legal basis")

	out := mustX(t, env, f.tax, "ledger", "log", "--kind", "share.approved")
	if strings.Count(out, "share.approved") != 1 || !strings.Contains(out, "of id until") || !strings.Contains(out, "ward not needed") || strings.Contains(out, "share.requested") {
		t.Fatalf("--kind share.approved:\n%s", out)
	}
	out = mustX(t, env, f.tax, "ledger", "log", "--kind", "share.")
	if !strings.Contains(out, "no legal basis") || !strings.Contains(out, "tax asks for id,ward of health.cond for 30 days: relief checks") {
		t.Fatalf("--kind share.:\n%s", out)
	}
	out = mustX(t, env, f.tax, "ledger", "log", "--dept", "police")
	if !strings.Contains(out, "police asks for") || strings.Contains(out, "tax asks for") {
		t.Fatalf("--dept police:\n%s", out)
	}
	if out := mustX(t, env, f.tax, "ledger", "log", "--since", "2999-01-01"); strings.Count(out, "\n") != 1 {
		t.Fatalf("--since in the future:\n%s", out)
	}
	if out := mustX(t, env, f.tax, "ledger", "log", "--since", "1h", "--kind", "share.rejected"); !strings.Contains(out, "no legal basis") {
		t.Fatalf("--since 1h:\n%s", out)
	}
	if _, err := xhub(t, env, f.tax, "ledger", "log", "--since", "last tuesday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("bad --since: %v", err)
	}

	var log struct {
		Entries []struct {
			Seq     uint64         `json:"seq"`
			Kind    string         `json:"kind"`
			Summary string         `json:"summary"`
			Body    map[string]any `json:"body"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(mustX(t, env, f.tax, "ledger", "log", "--kind", "share.approved", "-o", "json")), &log); err != nil || len(log.Entries) != 1 {
		t.Fatalf("log -o json: %v %+v", err, log)
	}
	approval := log.Entries[0]
	if approval.Body["reason"] != "ward not needed" || approval.Summary == "" {
		t.Fatalf("log -o json entry: %+v", approval)
	}
	seq := strconv.FormatUint(approval.Seq, 10)

	out = mustX(t, env, f.tax, "ledger", "show", seq)
	for _, want := range []string{"share.approved", "ward not needed", "\"fields\"", "inclusion proof verified", "spiffe://xhub/dept/health/officer"} {
		if !strings.Contains(out, want) {
			t.Errorf("ledger show lacks %q:\n%s", want, out)
		}
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(mustX(t, env, f.tax, "ledger", "show", seq, "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["inclusion_verified"] != true || shown["body"].(map[string]any)["reason"] != "ward not needed" {
		t.Fatalf("show -o json: %v", shown)
	}
	if _, err := xhub(t, env, f.tax, "ledger", "show", "999999"); err == nil {
		t.Fatal("an entry beyond the head was shown")
	}

	// The proof material, checked from the RFC alone.
	var p struct {
		Leaf       string   `json:"leaf"`
		LeafIndex  uint64   `json:"leaf_index"`
		LeafHash   string   `json:"leaf_hash_hex"`
		AuditPath  []string `json:"audit_path_hex"`
		TreeSize   uint64   `json:"tree_size"`
		Root       string   `json:"root_hash_hex"`
		SignedNote string   `json:"signed_note"`
	}
	if err := json.Unmarshal([]byte(mustX(t, env, f.tax, "ledger", "proof", seq, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	leaf, err := base64.StdEncoding.DecodeString(p.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(leaf), `"reason":"ward not needed"`) {
		t.Fatalf("leaf bytes: %s", leaf)
	}
	lh := sha256.Sum256(append([]byte{0}, leaf...))
	if hex.EncodeToString(lh[:]) != p.LeafHash {
		t.Fatalf("leaf hash %s, SHA-256(0x00||leaf) is %x", p.LeafHash, lh)
	}
	var path [][]byte
	for _, h := range p.AuditPath {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			t.Fatalf("audit path entry %q", h)
		}
		path = append(path, b)
	}
	root, ok := rfc9162Root(p.LeafIndex, p.TreeSize, lh[:], path)
	if !ok || hex.EncodeToString(root) != p.Root {
		t.Fatalf("RFC 9162 verification: root %x (ok %v), the hub says %s", root, ok, p.Root)
	}
	rootB64 := base64.StdEncoding.EncodeToString(root)
	if !strings.Contains(p.SignedNote, strconv.FormatUint(p.TreeSize, 10)+"\n"+rootB64+"\n") {
		t.Fatalf("the signed note does not carry this tree:\n%s", p.SignedNote)
	}
	// A changed leaf does not verify.
	leaf[len(leaf)-3] ^= 1
	bad := sha256.Sum256(append([]byte{0}, leaf...))
	if r, _ := rfc9162Root(p.LeafIndex, p.TreeSize, bad[:], path); hex.EncodeToString(r) == p.Root {
		t.Fatal("an altered leaf verified")
	}
}
