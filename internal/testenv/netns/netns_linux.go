package netns

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// envVar tells a test binary it runs inside the namespace Run made,
// for which test, and how the namespace is set up.
const envVar = "XHUB_TEST_NETNS"

// Mode says how Run sets up the namespace.
type Mode int

const (
	// LoopbackOnly: loopback up and nothing else, so a connection to any
	// address but loopback fails with "network is unreachable".
	LoopbackOnly Mode = iota
	// AllLocal: loopback up, and every address (0.0.0.0/0 and ::/0) routed
	// to it as local, so a connection to any address reaches a listener
	// on the wildcard address: what would leave the host reaches the test.
	AllLocal
)

// Run runs the calling test (a top-level test) again, alone, in a new
// network namespace holding only the loopback interface: a test binary
// run by root gets a network namespace, any other in a user namespace
// as well (unshare -rn) where the kernel allows it. Outside, it waits for
// that run, reports its output and result, and returns false; the caller
// returns. Inside, it sets the namespace up as mode says and returns true:
// the test goes on there. Where no namespace can be made the test is
// skipped, saying why.
func Run(t *testing.T, mode Mode) bool {
	t.Helper()
	if v := os.Getenv(envVar); v != "" {
		if v != fmt.Sprintf("%s,%d", t.Name(), mode) {
			t.Fatalf("%s=%q, not for this test", envVar, v)
		}
		if err := setUpNetNS(mode); err != nil {
			t.Fatalf("setting up the network namespace: %v", err)
		}
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("Run: only for a top-level test")
	}
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v", "-test.timeout=10m"}
	var tries []*syscall.SysProcAttr
	if os.Geteuid() == 0 {
		tries = append(tries, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET})
	}
	tries = append(tries, &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	})
	var why []string
	for _, attr := range tries {
		var out bytes.Buffer
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", envVar, t.Name(), mode))
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			why = append(why, err.Error())
			continue
		}
		err := cmd.Wait()
		t.Logf("in a new network namespace:\n%s", out.String())
		if err != nil {
			t.Fatalf("the test failed in its network namespace: %v", err)
		}
		if strings.Contains(out.String(), "--- SKIP: "+t.Name()) {
			t.Skip("skipped in its network namespace")
		}
		return false
	}
	t.Skipf("cannot make a network namespace to run in (%s): run as root, or where unprivileged user namespaces are allowed", strings.Join(why, "; "))
	return false
}

func setUpNetNS(mode Mode) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	if ifs, err := net.Interfaces(); err != nil || len(ifs) != 1 {
		return fmt.Errorf("want only lo in the namespace, have %v (%v)", ifs, err)
	}
	if err := linkUp("lo"); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if mode == AllLocal {
		for _, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
			if err := addLocalDefault(family, lo.Index); err != nil {
				return fmt.Errorf("local route for family %d: %w", family, err)
			}
		}
	}
	return nil
}

// linkUp is "ip link set name up".
func linkUp(name string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: the name, then ifr_flags
	copy(ifr[:syscall.IFNAMSIZ-1], name)
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, &ifr); err != nil {
		return err
	}
	flags := binary.NativeEndian.Uint16(ifr[16:]) | syscall.IFF_UP
	binary.NativeEndian.PutUint16(ifr[16:], flags)
	return ioctl(fd, syscall.SIOCSIFFLAGS, &ifr)
}

func ioctl(fd int, req uintptr, ifr *[40]byte) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(ifr))); e != 0 {
		return e
	}
	return nil
}

// addLocalDefault is "ip route add local 0.0.0.0/0 dev lo" (or ::/0).
func addLocalDefault(family uint8, ifindex int) error {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	const attrLen = syscall.SizeofRtAttr + 4
	msg := make([]byte, syscall.SizeofNlMsghdr+syscall.SizeofRtMsg+attrLen)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], syscall.RTM_NEWROUTE)
	ne.PutUint16(msg[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_ACK|syscall.NLM_F_CREATE|syscall.NLM_F_EXCL)
	ne.PutUint32(msg[8:], 1) // sequence
	rt := msg[syscall.SizeofNlMsghdr:]
	rt[0] = family
	rt[4] = syscall.RT_TABLE_MAIN
	rt[5] = syscall.RTPROT_BOOT
	rt[6] = syscall.RT_SCOPE_HOST
	rt[7] = syscall.RTN_LOCAL
	attr := rt[syscall.SizeofRtMsg:]
	ne.PutUint16(attr[0:], attrLen)
	ne.PutUint16(attr[2:], syscall.RTA_OIF)
	ne.PutUint32(attr[4:], uint32(ifindex))
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == syscall.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(ne.Uint32(m.Data)); code != 0 {
				return syscall.Errno(-code)
			}
			return nil
		}
	}
	return errors.New("no answer from netlink")
}
