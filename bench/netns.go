package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// The netns topology's addresses: a private /24 that exists only on the veth
// pair between the two namespaces this run creates.
const (
	nsClientIP = "10.213.77.1"
	nsServerIP = "10.213.77.2"
	nsMask     = "/24"
)

// netnsTopo creates two namespaces joined by a veth pair and returns the
// topology and a cleanup that deletes them (and with them the veth pair).
// Cleanup is safe to call more than once.
func netnsTopo(prefix string) (*topo, func(), error) {
	if os.Geteuid() != 0 {
		return nil, func() {}, fmt.Errorf("bench: -netns needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, func() {}, fmt.Errorf("bench: -netns needs the ip command (iproute2)")
	}
	nsA, nsB := prefix+"a", prefix+"b"
	vethA, vethB := shortName(prefix, "va"), shortName(prefix, "vb")
	cleanup := func() {
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
		exec.Command("ip", "link", "del", vethA).Run()
	}
	steps := [][]string{
		{"netns", "add", nsA},
		{"netns", "add", nsB},
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"link", "set", vethA, "netns", nsA},
		{"link", "set", vethB, "netns", nsB},
		{"-n", nsA, "addr", "add", nsClientIP + nsMask, "dev", vethA},
		{"-n", nsB, "addr", "add", nsServerIP + nsMask, "dev", vethB},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", vethA, "up"},
		{"-n", nsB, "link", "set", vethB, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("bench: ip %s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	d, err := newNSDialer("/var/run/netns/" + nsA)
	if err != nil {
		cleanup()
		return nil, func() {}, err
	}
	t := &topo{name: "netns", clientNS: nsA, serverNS: nsB, clientIP: nsClientIP, serverIP: nsServerIP, backIP: "0.0.0.0", ns: d}
	return t, func() { d.close(); cleanup() }, nil
}

// shortName keeps interface names within the kernel's 15 bytes.
func shortName(prefix, suffix string) string {
	if len(prefix)+len(suffix) > 15 {
		prefix = prefix[len(prefix)+len(suffix)-15:]
	}
	return prefix + suffix
}

// nsDialer runs socket-creating functions on an OS thread that has entered
// a network namespace. A socket keeps its namespace after creation, so the
// connection is then used from any goroutine. The thread is never unlocked:
// when the goroutine ends, the runtime discards the thread.
type nsDialer struct {
	reqs chan func()
	done chan struct{}
}

func newNSDialer(nsPath string) (*nsDialer, error) {
	d := &nsDialer{reqs: make(chan func()), done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		defer close(d.done)
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		started <- err
		if err != nil {
			return
		}
		for f := range d.reqs {
			f()
		}
	}()
	if err := <-started; err != nil {
		<-d.done
		return nil, fmt.Errorf("bench: enter namespace %s: %w", nsPath, err)
	}
	return d, nil
}

// do runs f in the namespace and waits for it.
func (d *nsDialer) do(f func()) {
	fin := make(chan struct{})
	d.reqs <- func() { f(); close(fin) }
	<-fin
}

func (d *nsDialer) close() {
	close(d.reqs)
	<-d.done
}
