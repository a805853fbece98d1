package schemas

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/store"
)

func TestRegistryStateMachine(t *testing.T) {
	v := store.Map{}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	reg := func(version int, compat Mode) error {
		b, _ := json.Marshal(Version{Subject: "health.cases", Version: version, Schema: json.RawMessage(`{}`), Compat: compat})
		return ApplyRegistered(v, b, at, uint64(10+version))
	}
	if err := reg(1, ""); err != nil {
		t.Fatal(err)
	}
	if err := reg(3, ""); err == nil {
		t.Fatal("version 3 registered after 1")
	}
	if err := reg(2, ModeBackward); err != nil {
		t.Fatal(err)
	}
	var s Subject
	if ok, _ := v.Get(SubjectKey("health.cases"), &s); !ok || s.Latest != 2 || s.Compat != ModeBackward {
		t.Fatalf("subject after two versions: %+v", s)
	}
	b, _ := json.Marshal(CompatChange{Subject: "health.cases", Compat: ModeFull})
	if err := ApplyCompat(v, b); err != nil {
		t.Fatal(err)
	}
	var ver Version
	if ok, _ := v.Get(VersionKey("health.cases", 1), &ver); !ok || ver.Seq != 11 || !ver.RegisteredAt.Equal(at) || ver.Compat != "" {
		t.Fatalf("version 1: %+v", ver)
	}
	if ok, _ := v.Get(SubjectKey("health.cases"), &s); !ok || s.Compat != ModeFull || s.Latest != 2 {
		t.Fatalf("subject after a compat change: %+v", s)
	}
}
