package dataplane

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/schemas"
)

// BenchmarkRecordPath: decode (UseNumber), validate, project one 15-field
// record of ~1 KiB — the per-record work of publish and query.
func BenchmarkRecordPath(b *testing.B) {
	sch := schemas.MustParse(`{"type":"object","properties":{
 "id":{"type":"integer"},"person_id":{"type":"string","pattern":"^[0-9]{17}[0-9X]$"},"name":{"type":"string"},
 "district":{"type":"string","enum":["north","south","east","west"]},"ward":{"type":"string"},"age":{"type":"integer","minimum":0},
 "score":{"type":"number"},"active":{"type":"boolean"},"vaccine":{"type":"string"},"dose":{"type":"integer","minimum":1},
 "given_on":{"type":"string","format":"date"},"clinic":{"type":"string"},"notes":{"type":"string","maxLength":4000},
 "batch":{"type":"string"},"updated":{"type":"string","format":"date-time"}},"required":["id","person_id","district","age"]}`)
	raw := fmt.Appendf(nil, `{"id":1,"person_id":"11010519491231002X","name":"Person 1","district":"north","ward":"w1","age":21,"score":1.5,"active":true,"vaccine":"MMR","dose":2,"given_on":"2026-11-22","clinic":"Clinic 1","notes":"%s","batch":"b-0","updated":"2026-11-22T10:00:00Z"}`, strings.Repeat("x", 700))
	fields := []string{"age", "district", "id", "person_id"}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeObject(raw, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	rec, _ := decodeObject(raw, 1<<20)
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			if err := sch.Validate(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("project", func(b *testing.B) {
		for b.Loop() {
			if _, err := projectRaw(raw, rec, fields); err != nil {
				b.Fatal(err)
			}
		}
	})
}
