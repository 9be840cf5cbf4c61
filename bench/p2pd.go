package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pnode is one p2pd node: a directory with its config, key and control
// socket, driven through the built binaries exactly as a user would
// (`p2pd init`, `p2pd id`, `p2pd run`, `p2pctl`).
type pnode struct {
	name   string
	dir    string
	listen string // UDP "ip:port"
	id     string
	extra  string // the [[peers]], [[services]] and [[forwards]] last written
	level  string // the [log] level last written
	proc   *proc
}

func (n *pnode) config() string { return filepath.Join(n.dir, "p2pd.toml") }
func (n *pnode) socket() string { return filepath.Join(n.dir, "p2pd.sock") }

// newNode makes the node's directory and key and reads its peer ID.
func (r *runner) newNode(dir, name, listenIP string) (*pnode, error) {
	listen, err := hostPort(listenIP, "udp")
	if err != nil {
		return nil, err
	}
	n := &pnode{name: name, dir: dir, listen: listen}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := n.writeConfig("info", ""); err != nil {
		return nil, err
	}
	if n.id, err = r.initKey(r.ctx, n.config(), name); err != nil {
		return nil, err
	}
	return n, nil
}

// writeConfig writes the node's whole config; extra holds its [[peers]],
// [[services]] and [[forwards]].
func (n *pnode) writeConfig(level, extra string) error {
	n.extra, n.level = extra, level
	cfg := fmt.Sprintf(`[node]
name = %q
key_file = "identity.key"
listen = [%q]
control_socket = "p2pd.sock"

[discovery]
mdns = false
dht = false

[log]
level = %q

%s`, n.name, n.listen, level, extra)
	return os.WriteFile(n.config(), []byte(cfg), 0o600)
}

// initKey makes a node's key with `p2pd init`, as a user would, and
// returns the peer ID `p2pd id` prints.
func (r *runner) initKey(ctx context.Context, config, name string) (string, error) {
	if out, err := exec.CommandContext(ctx, r.p2pd, "init", "--config", config, "--name", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: p2pd init for %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	out, err := exec.CommandContext(ctx, r.p2pd, "id", "--config", config).Output()
	id := strings.TrimSpace(string(out))
	if err != nil || id == "" {
		return "", fmt.Errorf("bench: p2pd id for %s printed %q: %v", name, id, err)
	}
	return id, nil
}

func peerTOML(name, id, addr string) string {
	if addr == "" {
		return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\n\n", name, id)
	}
	return fmt.Sprintf("[[peers]]\nname = %q\nid = %q\naddresses = [%q]\n\n", name, id, addr)
}

func serviceTOML(name, target, allow string) string {
	return fmt.Sprintf("[[services]]\nname = %q\ntarget = %q\nallow = [%q]\n\n", name, target, allow)
}

// forwardTOML is a forward with no practical cap on connections: the
// memory figure holds more than the default cap.
func forwardTOML(listen, peer, service string) string {
	return fmt.Sprintf("[[forwards]]\nlisten = %q\npeer = %q\nservice = %q\nmax_connections = 1048576\n\n", listen, peer, service)
}

// startNode runs the daemon and waits for its control socket. If its UDP
// port was taken meanwhile, it moves to another and tries again.
func (r *runner) startNode(n *pnode, prefix []string) error {
	for attempt := 0; ; attempt++ {
		err := r.startNodeOnce(n, prefix)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		host, _, _ := strings.Cut(n.listen, ":")
		if n.listen, err = hostPort(host, "udp"); err != nil {
			return err
		}
		if err := n.writeConfig(n.level, n.extra); err != nil {
			return err
		}
	}
}

func (r *runner) startNodeOnce(n *pnode, prefix []string) error {
	os.Remove(n.socket())
	argv := []string{r.p2pd, "run", "--config", n.config()}
	if len(r.o.p2pdEnv) > 0 {
		// env execs p2pd in its own process: the PID stays the daemon's.
		argv = append(append([]string{"env"}, r.o.p2pdEnv...), argv...)
	}
	p, err := r.procs.start("p2pd "+n.name, filepath.Join(n.dir, "log"), prefix, argv, false)
	if err != nil {
		return err
	}
	n.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(n.socket()); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("bench: p2pd %s exited: %s", n.name, tail(p.logPath, 5))
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	return fmt.Errorf("bench: p2pd %s made no control socket in 10 s: %s", n.name, tail(p.logPath, 5))
}

// ctl runs p2pctl against the node.
func (r *runner) ctl(ctx context.Context, n *pnode, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.p2pctl, append([]string{"--socket", n.socket()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("bench: p2pctl %s on %s: %v: %s", strings.Join(args, " "), n.name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// sessionCount asks the node how many sessions it holds.
func (r *runner) sessionCount(ctx context.Context, n *pnode) (int, error) {
	out, err := r.ctl(ctx, n, "--json", "sessions")
	if err != nil {
		return 0, err
	}
	var env struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.Unmarshal(out, &env); err == nil {
		return len(env.Sessions), nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(out, &list); err != nil {
		return 0, fmt.Errorf("bench: p2pctl --json sessions on %s: unparsable: %.80s", n.name, out)
	}
	return len(list), nil
}
