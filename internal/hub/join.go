package hub

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/pki"
	"github.com/xhub-gov/xhub/internal/secretfile"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// joined is what a node learns by joining, besides its pki folder; it
// is kept in the data dir (joined.json, mode 0600: the URL may hold a
// password) so the node restarts the same way.
type joined struct {
	NATSURL  string `json:"nats_url"`
	Replicas int    `json:"replicas"`
}

const joinedFile = "joined.json"

func (j joined) save(dataDir string) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return secretfile.Replace(filepath.Join(dataDir, joinedFile), b)
}

func loadJoined(dataDir string) (joined, bool, error) {
	var j joined
	b, err := os.ReadFile(filepath.Join(dataDir, joinedFile))
	if errors.Is(err, os.ErrNotExist) {
		return j, false, nil
	}
	if err != nil {
		return j, false, fmt.Errorf("hub: %w", err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, false, fmt.Errorf("hub: %s: %w", joinedFile, err)
	}
	return j, true, nil
}

// join proves the token's secret to the deployment's nodes, one after
// another, and installs the pki files the first to admit it seals to
// this node's key. Each node is dialled over TLS trusting only a server
// certificate issued by the CA whose fingerprint the token pins; no
// client certificate is shown, and the secret itself is never sent: the
// request carries a fresh X25519 public key and the claim to it signed
// with the secret (vocab.JoinClaim). wantsNATS asks for the admitting
// node's NATS URL, with its credentials; a node given its own NATS does
// not ask, and is not sent them.
func join(ctx context.Context, token, name, pkiDir string, wantsNATS bool, log *slog.Logger) (joined, error) {
	tok, err := vocab.ParseJoinToken(token)
	if err != nil {
		return joined{}, err
	}
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return joined{}, fmt.Errorf("hub: join: %w", err)
	}
	claim := vocab.JoinClaim{TokenID: tok.ID, Name: name, Key: key.PublicKey().Bytes(), WantsNATS: wantsNATS}
	req := &xhubv1.JoinRequest{TokenId: tok.ID, Name: name, JoinerKey: claim.Key, WantsNatsUrl: wantsNATS, Proof: tok.Prove(claim)}
	// The operator matches this against `xhub node list` (JOINER KEY).
	log.Info("joining the deployment", "token", tok.ID, "joiner_key", vocab.JoinKeyFingerprint(claim.Key), "wants_nats_url", wantsNATS)
	// Nodes that cannot be reached (restarting, not up yet) are tried
	// again, with a logged back-off, for joinPatience; a refusal (a spent,
	// expired or wrong token, another CA) ends the attempt at once.
	deadline := time.Now().Add(joinPatience)
	delay := 200 * time.Millisecond
	for {
		var errs []error
		for _, addr := range tok.Hubs {
			resp, err := joinAt(ctx, addr, tok.CASHA256, req)
			if err != nil {
				log.Warn("join: node refused or unreachable", "hub", addr, "err", err)
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
				var pe *pinError
				if status.Code(err) != codes.Unavailable || errors.As(err, &pe) {
					return joined{}, fmt.Errorf("hub: join: %w", errors.Join(errs...))
				}
				continue
			}
			secrets, err := vocab.OpenJoinSecrets(key, tok.ID, resp.ServerKey, resp.Sealed)
			if err != nil {
				return joined{}, fmt.Errorf("hub: join via %s: %w", addr, err)
			}
			if _, err := pki.Install(pkiDir, secrets.PKIFiles, tok.CASHA256); err != nil {
				return joined{}, err
			}
			log.Info("joined the deployment", "via", addr, "token", tok.ID, "ledger_entry", resp.Seq)
			return joined{NATSURL: secrets.NATSURL, Replicas: int(resp.Replicas)}, nil
		}
		if time.Now().Add(delay).After(deadline) {
			return joined{}, fmt.Errorf("hub: join: no node of the token answered within %s: %w", joinPatience, errors.Join(errs...))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return joined{}, fmt.Errorf("hub: join: %w", errors.Join(append(errs, ctx.Err())...))
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// joinPatience is how long a joining node waits for a node of its token
// to answer.
const joinPatience = 2 * time.Minute

func joinAt(ctx context.Context, addr, caSHA256 string, req *xhubv1.JoinRequest) (*xhubv1.JoinResponse, error) {
	pin, _ := hex.DecodeString(caSHA256)
	var refused atomic.Pointer[error] // the pin check's own refusal, kept typed
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is checked below against the pinned CA, not the
		// system roots; host names are not what is trusted here.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			err := verifyPinned(raw, pin)
			if err != nil {
				refused.Store(&err)
			}
			return err
		},
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := xhubv1.NewNodesClient(conn).Join(cctx, req)
	if p := refused.Load(); err != nil && p != nil {
		return nil, &pinError{err: *p}
	}
	return resp, err
}

// pinError is a node whose certificate is not from the pinned CA: trying
// again will not change that.
type pinError struct{ err error }

func (e *pinError) Error() string { return e.err.Error() }

// verifyPinned checks that the server's chain ends in the CA with the
// pinned fingerprint and that its leaf is a server certificate that CA
// signed.
func verifyPinned(raw [][]byte, pin []byte) error {
	if len(raw) < 2 {
		return errors.New("the hub node sent no CA certificate with its own")
	}
	ca := raw[len(raw)-1]
	if sum := sha256.Sum256(ca); !bytes.Equal(sum[:], pin) {
		return fmt.Errorf("the hub node's CA (sha256 %x) is not the one the join token pins (%x)", sum, pin)
	}
	caCert, err := x509.ParseCertificate(ca)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}
