package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

// An audit export is JSON lines: one line per entry, each holding the
// SHA-256 of the line before it and its own, then a summary line with the
// last hash and the hub's signed ledger head at the time of export. An
// edited, dropped or reordered line breaks the chain (`xhub audit export
// --check FILE` says where); keep the summary's last hash where the file
// is not, to tell a file rewritten whole.

type exportLine struct {
	N     int                  `json:"n"`
	Entry *adapters.AuditEntry `json:"entry,omitempty"`
	Prev  string               `json:"prev"`
	Hash  string               `json:"hash"`
}

type exportSummary struct {
	Summary struct {
		Since      time.Time `json:"since"`
		Until      time.Time `json:"until"`
		Entries    int       `json:"entries"`
		LastHash   string    `json:"last_hash"`
		LedgerHead string    `json:"ledger_head,omitempty"`
		ExportedAt time.Time `json:"exported_at"`
		ExportedBy string    `json:"exported_by"`
	} `json:"summary"`
}

var zeroHash = strings.Repeat("0", 64)

func chainHash(prev string, entry []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(entry)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cli) auditExportCmd() *cobra.Command {
	var dataset, dept, since, until, out, check string
	cmd := &cobra.Command{
		Use:   "export --since TIME [--until TIME] [--dataset D] [--dept D] --out FILE | --check FILE",
		Short: "Export audit entries to a hash-chained JSON-lines file (before the stream's retention removes them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if check != "" {
				n, last, err := checkExport(check)
				if err != nil {
					return err
				}
				c.say("%s: %d entries, chain intact, last hash %s", check, n, last)
				return nil
			}
			if out == "" || since == "" {
				return errors.New("give --since and --out (or --check FILE)")
			}
			from, err := parseTime(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			to := time.Now()
			if until != "" {
				if to, err = parseTime(until); err != nil {
					return fmt.Errorf("--until: %w", err)
				}
			}
			if !to.After(from) {
				return fmt.Errorf("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			err = c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				return writeExport(ctx, cl, f, adapters.AuditQuery{Dataset: dataset, Dept: dept, Since: from}, from, to, c)
			})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "from this time (RFC 3339, a date, or a duration ago like 720h)")
	f.StringVar(&until, "until", "", "up to this time, exclusive (default: now)")
	f.StringVar(&dataset, "dataset", "", "only this dataset")
	f.StringVar(&dept, "dept", "", "only accesses by, or to datasets of, this department")
	f.StringVar(&out, "out", "", "file to write (must not exist)")
	f.StringVar(&check, "check", "", "check an export's hash chain instead")
	return cmd
}

func writeExport(ctx context.Context, cl *adapters.Client, f *os.File, q adapters.AuditQuery, from, to time.Time, c *cli) error {
	entries, err := cl.Audit(ctx, q)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	prev, n := zeroHash, 0
	for i := range entries {
		e := &entries[i]
		if !e.Time.Before(to) {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		n++
		h := chainHash(prev, b)
		if err := enc.Encode(exportLine{N: n, Entry: e, Prev: prev, Hash: h}); err != nil {
			return err
		}
		prev = h
	}
	var sum exportSummary
	s := &sum.Summary
	s.Since, s.Until, s.Entries, s.LastHash, s.ExportedAt, s.ExportedBy = from.UTC(), to.UTC(), n, prev, time.Now().UTC(), cl.Identity().URI()
	if lv, err := cl.LedgerVerifier(c.ledgerKey); err == nil {
		if _, note, err := lv.Head(ctx); err == nil {
			s.LedgerHead = string(note)
		}
	}
	if err := enc.Encode(sum); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	c.say("exported %d audit entries (%s to %s) to %s; last hash %s", n, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), f.Name(), prev)
	return nil
}

// checkExport recomputes an export's chain and says where it breaks.
func checkExport(path string) (int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	prev, n, line := zeroHash, 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if strings.HasPrefix(string(raw), `{"summary"`) {
			var sum exportSummary
			if err := json.Unmarshal(raw, &sum); err != nil {
				return n, prev, fmt.Errorf("line %d: summary: %v", line, err)
			}
			if sum.Summary.Entries != n || sum.Summary.LastHash != prev {
				return n, prev, fmt.Errorf("line %d: the summary says %d entries ending in %s; the file holds %d ending in %s", line, sum.Summary.Entries, sum.Summary.LastHash, n, prev)
			}
			if sc.Scan() {
				return n, prev, fmt.Errorf("line %d: lines after the summary", line+1)
			}
			return n, prev, nil
		}
		var l struct {
			N     int             `json:"n"`
			Entry json.RawMessage `json:"entry"`
			Prev  string          `json:"prev"`
			Hash  string          `json:"hash"`
		}
		if err := json.Unmarshal(raw, &l); err != nil {
			return n, prev, fmt.Errorf("line %d: %v", line, err)
		}
		var e adapters.AuditEntry
		if err := json.Unmarshal(l.Entry, &e); err != nil {
			return n, prev, fmt.Errorf("line %d: entry: %v", line, err)
		}
		b, _ := json.Marshal(&e)
		if l.N != n+1 || l.Prev != prev || chainHash(prev, b) != l.Hash {
			return n, prev, fmt.Errorf("line %d: the chain breaks here (entry %d edited, dropped or moved)", line, n+1)
		}
		prev, n = l.Hash, n+1
	}
	if err := sc.Err(); err != nil {
		return n, prev, err
	}
	return n, prev, fmt.Errorf("no summary line: the export is cut short after %d entries", n)
}
