package console

import (
	"net"
	"strings"
	"testing"
)

// TestListen: the console's port is held on both loopback families and
// served on both; a non-loopback address, and a port given that is taken
// on the other family, are refused with the reason.
func TestListen(t *testing.T) {
	if _, err := Listen("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("0.0.0.0: %v", err)
	}
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	probe.Close()
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	for _, a := range []string{"127.0.0.1:" + port, "[::1]:" + port} {
		if l, err := net.Listen("tcp", a); err == nil {
			l.Close()
			t.Errorf("%s could be taken by another program", a)
		}
		go func() {
			if c, err := net.Dial("tcp", a); err == nil {
				c.Close()
			}
		}()
		c, err := lis.Accept()
		if err != nil {
			t.Fatalf("accepting on %s: %v", a, err)
		}
		c.Close()
	}
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lis.Accept(); err == nil {
		t.Fatal("accepted after Close")
	}

	squat, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	_, port, _ = net.SplitHostPort(squat.Addr().String())
	if l, err := Listen("127.0.0.1:" + port); err == nil {
		l.Close()
		t.Fatalf("127.0.0.1:%s served while another program holds [::1]:%s", port, port)
	} else if !strings.Contains(err.Error(), "::1") {
		t.Fatalf("the refusal does not name ::1: %v", err)
	}
}
