package schemas

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// The schema registry's state machine: the entry kinds that change
// subjects and versions, the keys of their views, and how an entry
// changes them. Apply functions read and write only the Views they are
// given and take time from the entry. Package exchange runs them from the
// log.

// The entry kinds of the schema registry are named in exchange/ledger (kinds.go).

// Subject is a schema subject's settings.
type Subject struct {
	Subject catalog.DatasetID `json:"subject"`
	Compat  Mode              `json:"compat"`
	Latest  int               `json:"latest"`
}

// Version is one registered version of a subject (the body of a
// schema.registered entry).
type Version struct {
	Subject      catalog.DatasetID `json:"subject"`
	Version      int               `json:"version"`
	Schema       json.RawMessage   `json:"schema"`
	Fields       []catalog.Field   `json:"fields"`
	Compat       Mode              `json:"compat"`
	RegisteredAt time.Time         `json:"registered_at"`
	Seq          uint64            `json:"seq"`
}

// Registered is the body of a schema.registered entry: the version the
// command made. When it was registered, and by which entry
// (Version.RegisteredAt, Seq), are the entry's own, set by the apply.
// (Bodies appended before this type carry them as zero values, and
// "compat":"" for no mode; the apply ignores the zeros.)
type Registered struct {
	Subject catalog.DatasetID `json:"subject"`
	Version int               `json:"version"`
	Schema  json.RawMessage   `json:"schema"`
	Fields  []catalog.Field   `json:"fields"`
	// Compat is the subject's mode from this version on ("": as it was).
	Compat Mode `json:"compat,omitempty"`
}

// CompatChange is the body of a schema.compat entry.
type CompatChange struct {
	Subject catalog.DatasetID `json:"subject"`
	Compat  Mode              `json:"compat"`
}

// MaxVersions bounds a subject's versions. Every version stays in the
// ledger and the views, and registering one checks it against all the
// earlier ones: a subject with no bound is a department's way to grow
// both, and the cost of each registration, without end.
const MaxVersions = 100

// VersionRoom refuses version next of subject past MaxVersions. It is a
// rule of the command, not of the state machine: a log with more versions
// (appended before the bound) still applies.
func VersionRoom(subject catalog.DatasetID, next int) error {
	if next > MaxVersions {
		return vocab.Exhausted("subject:"+string(subject), "schema subject %s has %d versions, the most the hub allows (%d): register the schema under a new subject", subject, next-1, MaxVersions)
	}
	return nil
}

// SubjectKey and VersionKey are where a subject and a version live.
func SubjectKey(s catalog.DatasetID) string { return keyspace.Subjects.Key(string(s)) }
func VersionKey(s catalog.DatasetID, v int) string {
	return VersionsPrefix(s) + fmt.Sprintf("%08d", v)
}

// VersionsPrefix starts the keys of every version of s.
func VersionsPrefix(s catalog.DatasetID) string { return keyspace.SchemaVersions.Key(string(s) + "/") }

// ApplyCompat sets a subject's compatibility mode.
func ApplyCompat(v catalog.Views, body []byte) error {
	var b CompatChange
	if err := json.Unmarshal(body, &b); err != nil {
		return err
	}
	subj := Subject{Subject: b.Subject}
	if _, err := v.Get(SubjectKey(b.Subject), &subj); err != nil {
		return err
	}
	subj.Compat = b.Compat
	return v.Put(SubjectKey(b.Subject), subj)
}

// ApplyRegistered stores the next version of a subject (a
// schema.registered entry appended at at, as entry seq).
func ApplyRegistered(v catalog.Views, body []byte, at time.Time, seq uint64) error {
	var r Registered
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	ver := Version{Subject: r.Subject, Version: r.Version, Schema: r.Schema, Fields: r.Fields, Compat: r.Compat}
	subj := Subject{Subject: ver.Subject, Compat: DefaultMode}
	if _, err := v.Get(SubjectKey(ver.Subject), &subj); err != nil {
		return err
	}
	if ver.Version != subj.Latest+1 {
		return fmt.Errorf("schema %s version %d after %d", ver.Subject, ver.Version, subj.Latest)
	}
	subj.Latest = ver.Version
	if ver.Compat != "" {
		subj.Compat = ver.Compat
	}
	ver.RegisteredAt, ver.Seq = at, seq
	if err := v.Put(VersionKey(ver.Subject, ver.Version), ver); err != nil {
		return err
	}
	return v.Put(SubjectKey(ver.Subject), subj)
}
