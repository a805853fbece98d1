package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

// An audit export is JSON lines: one line per entry, each holding the
// entry as the hub sent it, the hash of the line before it and its own
// (ledger.ChainHash), then a summary line with the hub's seal: a note
// signed with the ledger key stating the filter, the period, the number
// of entries, the chain's last hash, the exporter and the ledger head. The
// chain and the seal are made by the hub from what it sends: an edited,
// dropped, added or reordered line breaks the chain, and a file cut short
// or a summary edited no longer matches the seal (`xhub audit export
// --check FILE` says where, with the ledger key pinned in the creds file
// or --ledger-key).

type exportSummary struct {
	Summary struct {
		Dataset    string    `json:"dataset,omitempty"`
		Dept       string    `json:"dept,omitempty"`
		Since      time.Time `json:"since"`
		Until      time.Time `json:"until"`
		Entries    int       `json:"entries"`
		LastHash   string    `json:"last_hash"`
		LedgerHead string    `json:"ledger_head,omitempty"`
		ExportedAt time.Time `json:"exported_at"`
		ExportedBy string    `json:"exported_by"`
		Seal       string    `json:"seal"` // the hub's signed note over what the other fields say
	} `json:"summary"`
}

func (c *cli) auditExportCmd() *cobra.Command {
	var dataset, dept, since, until, out, check string
	cmd := &cobra.Command{
		Use:   "export --since TIME [--until TIME] [--dataset D] [--dept D] --out FILE | --check FILE",
		Short: "Export audit entries to a hash-chained JSON-lines file (before the stream's retention removes them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if check != "" {
				key, err := c.pinnedLedgerKey()
				if err != nil {
					return err
				}
				n, last, err := checkExport(check, key)
				if err != nil {
					return err
				}
				c.say("%s: %d entries, chain intact and sealed by the hub, last hash %s", check, n, last)
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
			f, err := secretfile.Create(out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			defer f.Abort()
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				return writeExport(ctx, cl, f, adapters.AuditQuery{Dataset: dataset, Dept: dept, Since: from}, from, to, c)
			})
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

func writeExport(ctx context.Context, cl *adapters.Client, f *secretfile.File, q adapters.AuditQuery, from, to time.Time, c *cli) error {
	w := bufio.NewWriter(f)
	prev, n := ledger.ZeroChainHash, 0
	var werr error
	seal, err := cl.ExportAudit(ctx, q, to, func(entry []byte) error {
		if !json.Valid(entry) || bytes.ContainsAny(entry, "\n\r") {
			return errors.New("audit export: the hub sent an entry that is not one line of JSON")
		}
		n++
		h := ledger.ChainHash(prev, entry)
		_, werr = fmt.Fprintf(w, "{\"n\":%d,\"entry\":%s,\"prev\":%q,\"hash\":%q}\n", n, entry, prev, h)
		prev = h
		return werr
	})
	if err != nil {
		return err
	}
	key := c.ledgerKey
	if key == "" {
		key = cl.LedgerKey()
	}
	if key == "" {
		return adapters.ErrNoLedgerKey
	}
	st, err := ledger.OpenAuditSeal(seal, key)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if st.Entries != n || st.LastHash != prev {
		return fmt.Errorf("audit export: the hub sealed %d entries ending in %s, but sent %d ending in %s", st.Entries, st.LastHash, n, prev)
	}
	var sum exportSummary
	s := &sum.Summary
	s.Dataset, s.Dept, s.Since, s.Until, s.Entries, s.LastHash = st.Dataset, st.Dept, st.Since.UTC(), st.Until.UTC(), st.Entries, st.LastHash
	s.ExportedAt, s.ExportedBy, s.Seal = st.ExportedAt.UTC(), st.ExportedBy, string(seal)
	if lv, err := cl.LedgerVerifier(c.ledgerKey); err == nil {
		if _, note, err := lv.Head(ctx); err == nil {
			s.LedgerHead = string(note)
		}
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	c.say("exported %d audit entries (%s to %s) to %s; last hash %s, sealed by the hub at ledger size %d", n, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), f.Name(), prev, st.Head.N)
	return nil
}

// pinnedLedgerKey is --ledger-key (or XHUB_LEDGER_KEY), else the key
// pinned in the creds file; it needs no hub.
func (c *cli) pinnedLedgerKey() (string, error) {
	if c.ledgerKey != "" {
		return c.ledgerKey, nil
	}
	if err := c.applyContext(); err != nil {
		return "", err
	}
	if c.creds == "" {
		return "", errors.New("no ledger key to check the hub's seal with: give --ledger-key (the hub's DIR/pki/ledger.pub) or --creds FILE")
	}
	cr, err := vocab.LoadCreds(c.creds)
	if err != nil {
		return "", err
	}
	if cr.LedgerKey == "" {
		return "", adapters.ErrNoLedgerKey
	}
	return cr.LedgerKey, nil
}

// checkExport recomputes an export's chain, checks the hub's seal with
// the ledger key, and says where they part.
func checkExport(path, key string) (int, string, error) {
	if key == "" {
		return 0, "", adapters.ErrNoLedgerKey
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	prev, n, line := ledger.ZeroChainHash, 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if strings.HasPrefix(string(raw), `{"summary"`) {
			var sum exportSummary
			if err := json.Unmarshal(raw, &sum); err != nil {
				return n, prev, fmt.Errorf("line %d: summary: %v", line, err)
			}
			s := sum.Summary
			if s.Seal == "" {
				return n, prev, fmt.Errorf("line %d: the summary has no seal from the hub: nothing shows the file is whole (an export made before seals; export it again)", line)
			}
			st, err := ledger.OpenAuditSeal([]byte(s.Seal), key)
			if err != nil {
				return n, prev, fmt.Errorf("line %d: %v", line, err)
			}
			if st.Entries != n || st.LastHash != prev {
				return n, prev, fmt.Errorf("line %d: the hub sealed %d entries ending in %s; the file holds %d ending in %s: entries dropped, added or the file cut short", line, st.Entries, st.LastHash, n, prev)
			}
			if s.Entries != st.Entries || s.LastHash != st.LastHash || !s.Since.Equal(st.Since) || !s.Until.Equal(st.Until) ||
				s.ExportedBy != st.ExportedBy || !s.ExportedAt.Equal(st.ExportedAt) || s.Dataset != st.Dataset || s.Dept != st.Dept {
				return n, prev, fmt.Errorf("line %d: the summary was edited: the hub's seal says %d entries of %s to %s (dataset %q, dept %q), exported by %s at %s", line,
					st.Entries, st.Since.Format(time.RFC3339Nano), st.Until.Format(time.RFC3339Nano), st.Dataset, st.Dept, st.ExportedBy, st.ExportedAt.Format(time.RFC3339Nano))
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
		if l.N != n+1 || l.Prev != prev || ledger.ChainHash(prev, l.Entry) != l.Hash {
			return n, prev, fmt.Errorf("line %d: the chain breaks here (entry %d edited, dropped or moved)", line, n+1)
		}
		prev, n = l.Hash, n+1
	}
	if err := sc.Err(); err != nil {
		return n, prev, err
	}
	return n, prev, fmt.Errorf("no summary line: the export is cut short after %d entries", n)
}
