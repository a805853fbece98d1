package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

// joinTokenOut is `xhub serve --join-token-out FILE`: a node that writes,
// once, the join token of the next node into a file of its own, so that
// a deployment tool (docker-compose.yml) hands the joiner that file and
// nothing else of this node's data dir. The token is made as `xhub node
// token --out FILE` makes it, with this node's admin credentials, inside
// this node's process.
type joinTokenOut struct {
	file, name string
	via        []string
}

func (j *joinTokenOut) flags(f *pflag.FlagSet) {
	f.StringVar(&j.file, "join-token-out", "", "once this node serves, write a one-time join token (1h) for another node to `FILE` (mode 0600), unless it exists: for a deployment tool that gives the next node that file and nothing else of this data dir (docker-compose.yml)")
	f.StringVar(&j.name, "join-token-name", "", "with --join-token-out: the next node's name, for the record")
	f.StringSliceVar(&j.via, "join-token-via", nil, "with --join-token-out: addresses the next node dials to join (default: this machine's hostname and the --listen port)")
}

// check refuses what cannot work before the node starts.
func (j *joinTokenOut) check() error {
	if j.file == "" {
		if j.name != "" || len(j.via) > 0 {
			return errors.New("--join-token-name and --join-token-via go with --join-token-out FILE")
		}
		return nil
	}
	if st, err := os.Stat(filepath.Dir(j.file)); err != nil || !st.IsDir() {
		return fmt.Errorf("--join-token-out %s: no such directory %s", j.file, filepath.Dir(j.file))
	}
	return nil
}

// write makes the token and writes it, unless the file exists. The file
// appears whole (secretfile: written aside, then moved into place), so a
// joiner never reads half a token.
func (j *joinTokenOut) write(ctx context.Context, node *hub.Node) (string, error) {
	if j.file == "" {
		return "", nil
	}
	// Reserved before the token is made: a file or link at the name, now
	// or planted meanwhile, is never written through.
	f, err := secretfile.Create(j.file)
	if errors.Is(err, secretfile.ErrExists) {
		return fmt.Sprintf("%s exists: no new join token made (delete it for a new one)", j.file), nil
	} else if err != nil {
		return "", fmt.Errorf("--join-token-out: %w", err)
	}
	defer f.Abort()
	via := j.via
	if len(via) == 0 {
		host, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("--join-token-out: this machine's hostname (give --join-token-via): %w", err)
		}
		_, port, err := net.SplitHostPort(node.Addr())
		if err != nil {
			return "", fmt.Errorf("--join-token-out: %w", err)
		}
		via = []string{net.JoinHostPort(host, port)}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := adapters.Dial(ctx, node.AdminCreds)
	if err != nil {
		return "", fmt.Errorf("--join-token-out: %w", err)
	}
	defer cl.Close()
	tok, info, err := cl.CreateJoinToken(ctx, j.name, time.Hour, via)
	if err != nil {
		return "", fmt.Errorf("--join-token-out: %w", err)
	}
	if _, err := f.Write([]byte(tok + "\n")); err != nil {
		return "", fmt.Errorf("--join-token-out: %w", err)
	}
	if err := f.Commit(); err != nil {
		return "", fmt.Errorf("--join-token-out: join token %s made but not written: %w", info.ID, err)
	}
	return fmt.Sprintf("join token %s for %q written to %s (ledger entry %d); it admits one node, through %v, until %s",
		info.ID, j.name, j.file, info.Seq, via, info.ExpiresAt.Format(time.RFC3339)), nil
}
