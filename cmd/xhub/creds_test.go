package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestCredsExportPEM: a creds file becomes three PEM files (0600) that a
// plain TLS client — here gRPC with nothing of xhub but the generated
// stubs — uses to call the hub as the same identity; the printed lines
// name them; nothing is overwritten; a file that is not a creds file is
// refused by name.
func TestCredsExportPEM(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	dir := filepath.Join(t.TempDir(), "tax-pem")
	out := mustX(t, env, f.tax, "creds", "export", f.tax, "--pem", dir)
	for _, name := range []string{"cert.pem", "key.pem", "ca.pem"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		if !strings.Contains(out, filepath.Join(dir, name)) {
			t.Errorf("the printed lines do not name %s:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "grpcurl -cert") || !strings.Contains(out, "xhub.v1.Catalog/ListDatasets") {
		t.Fatalf("printed lines:\n%s", out)
	}

	// Any TLS client: the standard library's key pair and pool.
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := xhubv1.NewCatalogClient(conn).ListDatasets(context.Background(), &xhubv1.ListDatasetsRequest{PageSize: 10}); err != nil {
		t.Fatalf("the hub refused the exported PEM files: %v", err)
	}
	me, err := xhubv1.NewDepartmentsClient(conn).ListDepartments(context.Background(), &xhubv1.ListDepartmentsRequest{})
	if err != nil || len(me.Departments) == 0 {
		t.Fatalf("as tax's officer: %v", err)
	}

	// The printed curl line works as printed (HTTP/2; .ci/run installs curl).
	curl, err := exec.LookPath("curl")
	if err != nil && os.Getenv("CI") != "" {
		t.Fatal("curl is needed in CI")
	}
	if err == nil {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "curl ") && strings.Contains(l, "Catalog/ListDatasets") {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("no curl line:\n%s", out)
		}
		res, err := exec.Command("sh", "-c", strings.Replace(line, "curl ", curl+" -sS --fail-with-body ", 1)).CombinedOutput()
		if err != nil || !strings.Contains(string(res), `"datasets"`) {
			t.Fatalf("%s\n%v: %s", line, err, res)
		}
	}

	// Exported twice into the same directory: refused, files kept.
	before, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
	if _, err := xhub(t, env, f.tax, "creds", "export", f.health, "--pem", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("export over existing files: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "key.pem")); string(after) != string(before) {
		t.Fatal("an exported key was overwritten")
	}
	// Not a creds file.
	bogus := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bogus, []byte("hub: x\nnot a credential\n"), 0o600)
	if _, err := xhub(t, env, f.tax, "creds", "export", bogus, "--pem", t.TempDir()); err == nil || !strings.Contains(err.Error(), bogus) {
		t.Fatalf("export of a file that is not a creds file: %v", err)
	}
}

// TestReviewCredsExportIntoDirOthersWrite: `creds export --pem DIR` wrote
// the key into an existing DIR that its group or other users can write,
// where another local user could swap a file for theirs (a CA of their
// own, say) once written. Found by the second outside review. Such a DIR
// (0777, 0770) is refused by its mode, saying to use a directory only
// you can write, and nothing is written; 0700 is taken, a new DIR is
// made 0700, and a sticky DIR like /tmp (1777) is taken: there only a
// file's owner, the directory's owner and root may rename or remove it.
func TestReviewCredsExportIntoDirOthersWrite(t *testing.T) {
	env := testenv.Start(t)
	creds := env.Node.AdminCreds
	mkdir := func(mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "pem")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		mode os.FileMode
		who  string
	}{{0o777, "its group and other users can write it"}, {0o770, "its group can write it"}, {0o702, "other users can write it"}} {
		dir := mkdir(tc.mode)
		_, err := xhub(t, env, creds, "creds", "export", creds, "--pem", dir)
		if err == nil {
			t.Fatalf("export into a %04o DIR: accepted", tc.mode)
		}
		for _, want := range []string{fmt.Sprintf("%s is mode %04o", dir, tc.mode), tc.who, "use a directory only you can write (install -d -m 700 " + dir + ")"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("export into a %04o DIR: %q does not say %q", tc.mode, err, want)
			}
		}
		if names, _ := os.ReadDir(dir); len(names) != 0 {
			t.Errorf("export into a %04o DIR refused, yet it holds %v", tc.mode, names)
		}
	}
	fresh := filepath.Join(t.TempDir(), "new", "pem")
	for _, dir := range []string{mkdir(0o700), mkdir(0o755), mkdir(0o777 | os.ModeSticky), fresh} {
		mustX(t, env, creds, "creds", "export", creds, "--pem", dir)
		if _, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil {
			t.Fatalf("export into %s: %v", dir, err)
		}
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("a new DIR: %v, %v; want mode 0700", fi.Mode(), err)
	}
}
