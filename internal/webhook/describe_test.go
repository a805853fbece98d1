package webhook

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDescribe: what the department reads of a failure names what failed
// (the name, the address it chose, the guard's reason, the status, the
// certificate), never the hub's resolver or its own address and port.
func TestDescribe(t *testing.T) {
	post := func(allowPrivate bool, timeout time.Duration, u string) error {
		t.Helper()
		c := (&Dispatcher{cfg: Config{AllowPrivate: allowPrivate, Timeout: timeout}}).newClient()
		res, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			res.Body.Close()
			t.Fatalf("%s: delivered", u)
		}
		return err
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	defer silent.Close()
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	hubSide := &net.TCPAddr{IP: net.ParseIP("10.20.30.40"), Port: 43210}
	remote := &net.TCPAddr{IP: net.ParseIP("203.0.113.5"), Port: 443}
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "https://health.example/hook", Err: err} }

	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"guard", post(false, 5*time.Second, "http://100.64.1.1/hook"), "refused: 100.64.1.1 is not a public address (shared address space (carrier-grade NAT, cloud metadata))"},
		{"guard, carried", post(false, 5*time.Second, "http://[64:ff9b::a9fe:a9fe]/hook"), "refused: 64:ff9b::a9fe:a9fe is not a public address (NAT64 translation, carrying 169.254.169.254: link-local)"},
		{"refused", post(true, 5*time.Second, "http://"+closedAddr+"/hook"), "connection refused by " + closedAddr},
		{"timeout", post(true, 300*time.Millisecond, "http://"+silent.Addr().String()+"/hook"), "timeout after 300ms"},
		{"certificate", post(true, 5*time.Second, tlsSrv.URL), "TLS: the server's certificate: x509: certificate signed by unknown authority"},
		{"status", &StatusError{Code: 503}, "HTTP 503"},
		{"no such host", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "health.example", Server: "10.255.255.53:53", IsNotFound: true}}),
			"could not resolve health.example: no such host"},
		{"resolver down", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "read udp 10.20.30.40:5353->10.255.255.53:53: connection refused", Name: "health.example", Server: "10.255.255.53:53"}}),
			"could not resolve health.example"},
		{"resolver timeout", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "health.example", Server: "10.255.255.53:53", IsTimeout: true}}),
			"could not resolve health.example: timed out"},
		{"reset", wrap(&net.OpError{Op: "read", Net: "tcp", Source: hubSide, Addr: remote, Err: os.NewSyscallError("read", syscall.ECONNRESET)}),
			"connection reset by 203.0.113.5:443"},
		{"no route", wrap(&net.OpError{Op: "dial", Net: "tcp", Addr: remote, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}),
			"no route to 203.0.113.5:443"},
		{"other", wrap(errors.New("net/http: something from 10.20.30.40:43210")), "the delivery failed (the hub's log has the details)"},
	} {
		got := describe(c.err, 300*time.Millisecond, 300*time.Millisecond)
		// A busy machine may time out connecting, which the words add.
		if got != c.want && !(c.name == "timeout" && strings.HasPrefix(got, c.want+" connecting to 127.0.0.1:")) {
			t.Errorf("%s: %v\nshown %q\nwant  %q", c.name, c.err, got, c.want)
		}
		for _, leak := range []string{"10.255.255.53", ":53", "10.20.30.40", "43210"} {
			if strings.Contains(got, leak) {
				t.Errorf("%s: %q names the hub's network (%s)", c.name, got, leak)
			}
		}
	}
}
