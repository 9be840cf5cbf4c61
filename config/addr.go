package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The address forms of the schema. Each check returns "" when s is fine, else what is wrong
// and how to fix it, for a KeyError.

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path less its NUL).
const maxSocketPath = 107

// splitPort splits "host:port" and parses a numeric port in [minPort, 65535].
func splitPort(s string, minPort int) (host string, port int, msg string) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, notHostPort(s)
	}
	if p == "" || strings.TrimLeft(p, "0123456789") != "" {
		return "", 0, "port " + quote(p) + " is not a number; use " + strconv.Itoa(minPort) + "-65535"
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < minPort || n > 65535 {
		if len(p) > 12 {
			p = p[:12] + "..."
		}
		return "", 0, "port " + p + " out of range; use " + strconv.Itoa(minPort) + "-65535"
	}
	return host, n, ""
}

// notHostPort says what is wrong with s, which net.SplitHostPort refused.
// An example that keeps the user's host shows where the port goes.
func notHostPort(s string) string {
	const example = "127.0.0.1:4242"
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		return `no port; want "host:port", e.g. ` + quote(s+":4242")
	case strings.Count(s, ":") > 1 || strings.ContainsAny(s, "[]"):
		return `not "host:port" (write IPv6 addresses as "[::1]:port")`
	case !strings.Contains(s, ":"):
		if ip, err := netip.ParseAddr(s); (err == nil && ip.Is4()) || s == "localhost" {
			return `no port; want "host:port", e.g. ` + quote(s+":4242")
		}
		return `no port; want "host:port", e.g. "` + example + `"`
	default:
		return `not "host:port", e.g. "` + example + `"`
	}
}

// checkBind checks a local address to bind: host an IP address or "localhost".
func checkBind(s string, minPort int) string {
	host, _, msg := splitPort(s, minPort)
	if msg != "" {
		return msg
	}
	if host == "localhost" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return `host must be an IP address or "localhost" (use "0.0.0.0" or "[::]" for every address)`
	}
	return ""
}

// checkEndpoint checks a remote "host:port": host an IP address or a DNS name, port 1-65535.
func checkEndpoint(s string) string {
	host, _, msg := splitPort(s, 1)
	if msg != "" {
		return msg
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if !isDNSName(host) {
		return "host " + quote(host) + " is neither an IP address nor a DNS name"
	}
	return ""
}

// normalizeForward accepts "port", ":port" and "host:port" and returns "host:port", with
// 127.0.0.1 when no host is written: local listeners are loopback unless the config says so.
// "unix:/path" comes back with the path cleaned.
func normalizeForward(s string) (string, string) {
	if path, ok := strings.CutPrefix(s, unixPrefix); ok {
		if msg := checkSocketPath(path); msg != "" {
			return "", msg
		}
		return unixPrefix + filepath.Clean(path), ""
	}
	if s != "" && strings.TrimLeft(s, "0123456789") == "" {
		s = ":" + s
	}
	if msg := checkBind(withLoopback(s), 1); msg != "" {
		return "", msg
	}
	host, port, _ := net.SplitHostPort(withLoopback(s))
	return net.JoinHostPort(host, port), ""
}

// checkSocketPath checks the path of a "unix:" address: absolute, short enough for sun_path.
func checkSocketPath(path string) string {
	switch {
	case !filepath.IsAbs(path):
		return `the socket path must be absolute: "unix:/path/to/socket"`
	case strings.ContainsRune(path, 0):
		return "the socket path contains a NUL byte"
	case len(path) > maxSocketPath:
		return fmt.Sprintf("the socket path is %d bytes, a Unix socket path can have at most %d; choose a shorter one",
			len(path), maxSocketPath)
	}
	return ""
}

// checkSocketDir checks that the directory a socket is to be created in exists.
func checkSocketDir(dir string) string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "the directory " + dir + " does not exist; create it (e.g. RuntimeDirectory= in the systemd unit) or choose another path"
	case err != nil:
		return "the directory " + dir + ": " + err.Error()
	case !fi.IsDir():
		return dir + " is not a directory; choose another path"
	}
	return ""
}

func withLoopback(s string) string {
	if strings.HasPrefix(s, ":") {
		return "127.0.0.1" + s
	}
	return s
}

// isDNSName reports whether s is a syntactically valid host name (letters, digits, '-' and
// '_', labels of 1-63 bytes, 253 in all, an optional final dot).
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
